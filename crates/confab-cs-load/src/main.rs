//! `cs-fanout`: WebSocket fan-out of the ChatServer face (`POST /chats/<id>/messages` to a group
//! whose members all have a socket open) and the server's memory per open socket.
//!
//! ```text
//! cs-fanout --addr 127.0.0.1:8081 --pid 1234 [--users 10000] [--group 1000] [--concurrency 4]
//!     [--seq-msgs 200] [--rates 10,30] [--steady-secs 10] [--posters 8] [--sat-msgs 1000]
//!     [--logins 200] [--seed 1]
//! ```
//!
//! What it does, in order, printing a report for each step:
//! 1. registers `--users` users (`POST /users`, which hashes the password with Argon2 and opens a
//!    device session), at most `--concurrency` at a time; then logs `--logins` of them in again
//!    (`POST /users/login`, Basic auth), which verifies the password. Server RSS after the first
//!    200 registrations and after the last one gives the memory per user and session.
//! 2. creates a group of `--group` members (the first users; `POST /chats`, then
//!    `POST /chats/<id>/users` ten at a time) and makes one authenticated request per session
//!    (`GET /users/me`), so everything but the sockets exists before memory is read.
//! 3. opens the sockets of the group's members, reads RSS before and after: memory per socket.
//! 4. runs the fan-out scenarios with only the group's sockets open:
//!    - `one-at-a-time`: the owner posts, waits until every member's socket has the message, repeats;
//!    - `steady` at each of `--rates` msg/s for `--steady-secs`, by the owner and by random members
//!      (open loop: a post starts on schedule whether or not the previous one was answered);
//!    - `saturated`: `--posters` concurrent posters, each posting again as soon as its previous post
//!      is answered (`--sat-msgs` in all), as fixed members and as a random member per post.
//! 5. opens a socket for every other user (`--users` sockets in all), idle, and reads RSS again:
//!    memory per idle socket.
//! 6. runs the one-at-a-time and saturated scenarios again with all sockets open.
//!
//! Every member's socket gets every message of its group (the author's too). "Post → last
//! delivery" is measured from the moment the client starts the `POST` to the moment the last of
//! the group's sockets has read the frame. Memory is the server's VmRSS (`/proc/<pid>/status`) and
//! Pss (`/proc/<pid>/smaps_rollup`); CPU is utime+stime of `/proc/<pid>/stat`.
//!
//! Against a loopback server, socket `i` connects from source address `127.0.1.(i % 250 + 1)`, so
//! 10,000 connections do not exhaust one address's ephemeral ports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use confab_procstat::{cpu_secs, pss_kib, rss_kib};
use futures_util::StreamExt as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const PASSWORD: &str = "benchpass1";
/// Marks the `localId` of the benchmark's messages; the digits after it are the message's number.
const LOCAL_ID_KEY: &[u8] = b"\"localId\":\"b";

struct Args {
    addr: SocketAddr,
    pid: Option<u32>,
    users: usize,
    group: usize,
    concurrency: usize,
    logins: usize,
    seq_msgs: usize,
    rates: Vec<f64>,
    steady_secs: f64,
    posters: usize,
    sat_msgs: usize,
    seed: u64,
    prefix: String,
}

fn usage(msg: &str) -> ! {
    eprintln!("cs-fanout: {msg}");
    eprintln!("usage: cs-fanout --addr HOST:PORT [--pid PID] [--users N] [--group G] [--concurrency C] [--logins L] [--seq-msgs M] [--rates R,R] [--steady-secs S] [--posters K] [--sat-msgs M] [--seed N] [--prefix P]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
        pid: None,
        users: 10_000,
        group: 1_000,
        concurrency: 4,
        logins: 200,
        seq_msgs: 200,
        rates: vec![10.0, 30.0],
        steady_secs: 10.0,
        posters: 8,
        sat_msgs: 1_000,
        seed: 1,
        prefix: "bench".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{k} needs a value")))
        };
        fn num<T: std::str::FromStr>(s: String, what: &str) -> T {
            s.parse().unwrap_or_else(|_| usage(&format!("bad {what}")))
        }
        match k.as_str() {
            "--addr" => a.addr = num(v(), "--addr"),
            "--pid" => a.pid = Some(num(v(), "--pid")),
            "--users" => a.users = num(v(), "--users"),
            "--group" => a.group = num(v(), "--group"),
            "--concurrency" => a.concurrency = num(v(), "--concurrency"),
            "--logins" => a.logins = num(v(), "--logins"),
            "--seq-msgs" => a.seq_msgs = num(v(), "--seq-msgs"),
            "--rates" => {
                a.rates = v()
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(|r| num(r.to_string(), "--rates"))
                    .collect()
            }
            "--steady-secs" => a.steady_secs = num(v(), "--steady-secs"),
            "--posters" => a.posters = num(v(), "--posters"),
            "--sat-msgs" => a.sat_msgs = num(v(), "--sat-msgs"),
            "--seed" => a.seed = num(v(), "--seed"),
            "--prefix" => a.prefix = v(),
            _ => usage(&format!("unknown argument {k}")),
        }
    }
    if a.group < 2 || a.group > a.users {
        usage("--group must be at least 2 and at most --users");
    }
    if a.concurrency == 0 || a.posters == 0 || a.posters > a.group {
        usage("--concurrency and --posters must be positive, --posters at most --group");
    }
    if a.rates.iter().any(|r| *r <= 0.0) {
        usage("--rates must be positive");
    }
    if a.logins > a.users {
        usage("--logins must be at most --users");
    }
    a
}

// ---------- measurements of the server process ----------

/// Server memory at one moment.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: u64,
    pss: u64,
}

fn mem(pid: Option<u32>) -> Mem {
    let Some(pid) = pid else {
        return Mem::default();
    };
    Mem {
        rss: rss_kib(pid).unwrap_or(0),
        pss: pss_kib(pid).unwrap_or(0),
    }
}

fn print_mem_delta(what: &str, before: Mem, after: Mem, n: usize) {
    let per = |a: u64, b: u64| (a as f64 - b as f64) / n.max(1) as f64;
    println!(
        "{what:<22} RSS {:.1} → {:.1} MiB, Pss {:.1} → {:.1} MiB over {n} → {:.2} KiB RSS ({:.2} KiB Pss) each",
        before.rss as f64 / 1024.0,
        after.rss as f64 / 1024.0,
        before.pss as f64 / 1024.0,
        after.pss as f64 / 1024.0,
        per(after.rss, before.rss),
        per(after.pss, before.pss),
    );
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

// ---------- what the sockets see ----------

/// Nanoseconds since the process started: one clock for posts and deliveries.
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Per message (by its number): when its post started, when the last socket read it, how many did.
struct Track {
    sent: Vec<AtomicU64>,
    first: Vec<AtomicU64>,
    last: Vec<AtomicU64>,
    got: Vec<AtomicU32>,
    /// Message frames of the benchmark read by any socket.
    frames: AtomicU64,
    /// Other frames (group changes and the like).
    other: AtomicU64,
    /// Sockets the server closed (or that failed) while the benchmark held them open.
    closed: AtomicUsize,
    next: AtomicUsize,
}

impl Track {
    fn new(cap: usize) -> Self {
        let v64 = |x| (0..cap).map(|_| AtomicU64::new(x)).collect();
        Self {
            sent: v64(0),
            first: v64(u64::MAX),
            last: v64(0),
            got: (0..cap).map(|_| AtomicU32::new(0)).collect(),
            frames: AtomicU64::new(0),
            other: AtomicU64::new(0),
            closed: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        }
    }

    /// A new message number, or `None` when the table is full.
    fn claim(&self) -> Option<usize> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n < self.sent.len()).then_some(n)
    }

    fn on_frame(&self, frame: &[u8]) {
        let at = now_ns();
        let Some(n) = message_number(frame).filter(|n| *n < self.sent.len()) else {
            self.other.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.first[n].fetch_min(at, Ordering::Relaxed);
        self.last[n].fetch_max(at, Ordering::Relaxed);
        self.got[n].fetch_add(1, Ordering::Release);
    }
}

/// The number in a benchmark message's `localId` (`b<digits>-…`).
fn message_number(frame: &[u8]) -> Option<usize> {
    let at = frame
        .windows(LOCAL_ID_KEY.len())
        .position(|w| w == LOCAL_ID_KEY)?
        + LOCAL_ID_KEY.len();
    let digits = &frame[at..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

fn local_id(n: usize) -> String {
    format!("b{n:010}-0000-4000-8000-000000000000")
}

// ---------- REST ----------

#[derive(Clone)]
struct User {
    id: i64,
    username: String,
    token: String,
    session: String,
}

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), String> {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

fn device(i: usize) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{i:012}"),
        "name": "Bench device",
        "model": "Bench",
        "transport": "none",
    })
}

/// The session this answer opened (the one whose token is shown).
fn session_of(v: &Value) -> Option<(String, String)> {
    v["deviceSessions"].as_array()?.iter().find_map(|d| {
        let token = d["accessToken"].as_str().filter(|t| !t.is_empty())?;
        Some((token.to_string(), d["id"].as_str()?.to_string()))
    })
}

async fn register(http: &Http, prefix: &str, i: usize) -> Result<User, String> {
    let username = format!("{prefix}{i}");
    let body = json!({"name": "Bench User", "username": username, "password": PASSWORD,
                      "deviceInfo": device(i)});
    let (s, v) = http.call(Method::POST, "/users", None, Some(body)).await?;
    if s != StatusCode::OK {
        return Err(format!("register: {s} {v}"));
    }
    let (token, session) = session_of(&v).ok_or("register: no session")?;
    Ok(User {
        id: v["info"]["id"].as_i64().ok_or("register: no id")?,
        username,
        token,
        session,
    })
}

async fn login(http: &Http, u: &User, i: usize) -> Result<(), String> {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{PASSWORD}", u.username));
    let resp = http
        .client
        .post(format!("{}/users/login", http.base))
        .header("authorization", format!("Basic {basic}"))
        .json(&device(1_000_000 + i))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let s = resp.status();
    let _ = resp.bytes().await;
    if s == StatusCode::OK {
        Ok(())
    } else {
        Err(format!("login: {s}"))
    }
}

/// Runs `f(i)` for every `i` in `range`, at most `limit` at a time; the results in order and the
/// duration of each call.
async fn bounded<T, F, Fut>(
    range: std::ops::Range<usize>,
    limit: usize,
    f: F,
) -> Vec<(Result<T, String>, u64)>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(limit));
    let mut tasks = Vec::with_capacity(range.len());
    for i in range {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let fut = f(i);
        tasks.push(tokio::spawn(async move {
            let t = now_ns();
            let r = fut.await;
            drop(permit);
            (r, now_ns() - t)
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

fn print_calls<T>(what: &str, results: &[(Result<T, String>, u64)], secs: f64) {
    let mut lat: Vec<u64> = results.iter().map(|r| r.1).collect();
    lat.sort_unstable();
    let failed: Vec<&String> = results.iter().filter_map(|r| r.0.as_ref().err()).collect();
    println!(
        "{what:<22} {} in {secs:.1} s → {:.1}/s; each p50 {:.1} ms, p99 {:.1} ms; {} failed{}",
        results.len(),
        results.len() as f64 / secs,
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        failed.len(),
        failed
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
}

// ---------- sockets ----------

async fn open_socket(
    addr: SocketAddr,
    i: usize,
    u: &User,
    track: Arc<Track>,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let sock = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if addr.ip().is_loopback() {
        let src = Ipv4Addr::new(127, 0, 1, (i % 250 + 1) as u8);
        sock.bind(SocketAddr::new(IpAddr::V4(src), 0))
            .map_err(|e| e.to_string())?;
    }
    let stream = sock.connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut req = format!("ws://{addr}/{}", u.session)
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", u.token)
            .parse()
            .map_err(|_| "header".to_string())?,
    );
    // The client's own buffers are kept small: 10,000 sockets live in this process too.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(config))
        .await
        .map_err(|e| e.to_string())?;
    // The server pings first.
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(WsMessage::Ping(_)))) => {}
        other => return Err(format!("no ping first: {other:?}")),
    }
    Ok(tokio::spawn(async move {
        let mut stop = stop;
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(WsMessage::Binary(b))) => track.on_frame(&b),
                    Some(Ok(WsMessage::Text(t))) => track.on_frame(t.as_bytes()),
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => {
                        track.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                },
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
            }
        }
    }))
}

// ---------- scenarios ----------

#[derive(Clone, Copy)]
enum Who {
    /// The group's owner posts everything.
    Owner,
    /// The first `k` members post, each its own share.
    Fixed,
    /// Every post is by a random member.
    Random,
}

enum Shape {
    OneAtATime {
        msgs: usize,
    },
    Steady {
        rate: f64,
        secs: f64,
        who: Who,
    },
    Saturated {
        posters: usize,
        msgs: usize,
        who: Who,
    },
}

struct Bench {
    args: Args,
    http: Arc<Http>,
    track: Arc<Track>,
    members: Arc<Vec<User>>,
    chat: Arc<str>,
    /// Sockets of the group's members: deliveries expected per message.
    expected: u32,
}

/// The outcome of one post: its number, HTTP status (0: transport error), round trip.
type Posted = (usize, u16, u64);

async fn post(http: &Http, track: &Track, chat: &str, u: &User, n: usize) -> Posted {
    let body = json!({"localId": local_id(n), "text": format!("fan-out benchmark message {n}")});
    let t = now_ns();
    track.sent[n].store(t, Ordering::Relaxed);
    let status = http
        .call(
            Method::POST,
            &format!("/chats/{chat}/messages"),
            Some(&u.token),
            Some(body),
        )
        .await
        .map(|r| r.0.as_u16())
        .unwrap_or(0);
    (n, status, now_ns() - t)
}

impl Bench {
    fn poster(&self, who: Who, k: usize, rng: &mut StdRng) -> User {
        match who {
            Who::Owner => self.members[0].clone(),
            Who::Fixed => self.members[k].clone(),
            Who::Random => self.members[rng.gen_range(0..self.members.len())].clone(),
        }
    }

    /// Waits until message `n` reached every socket (or `limit` passed).
    async fn delivered(&self, n: usize, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while self.track.got[n].load(Ordering::Acquire) < self.expected {
            if Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        true
    }

    async fn run(&self, label: &str, shape: Shape) {
        let cpu0 = self.args.pid.and_then(cpu_secs);
        let me0 = cpu_secs(std::process::id());
        let closed0 = self.track.closed.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let mut posted: Vec<Posted> = Vec::new();
        let mut rng = StdRng::seed_from_u64(self.args.seed);
        let mut behind_ns = 0u64;
        let offered = match shape {
            Shape::OneAtATime { msgs } => {
                for _ in 0..msgs {
                    let Some(n) = self.track.claim() else { break };
                    let p = post(&self.http, &self.track, &self.chat, &self.members[0], n).await;
                    let ok = p.1 == 200;
                    posted.push(p);
                    if ok && !self.delivered(n, Duration::from_secs(10)).await {
                        break;
                    }
                }
                "one poster (the owner), next post once every socket has the last".to_string()
            }
            Shape::Steady { rate, secs, who } => {
                let total = (rate * secs).round() as usize;
                let start = tokio::time::Instant::now();
                let mut tasks = Vec::with_capacity(total);
                for i in 0..total {
                    let at = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(at).await;
                    behind_ns = behind_ns.max(at.elapsed().as_nanos() as u64);
                    let Some(n) = self.track.claim() else { break };
                    let u = self.poster(who, 0, &mut rng);
                    let (http, track, chat) =
                        (self.http.clone(), self.track.clone(), self.chat.clone());
                    tasks.push(tokio::spawn(async move {
                        post(&http, &track, &chat, &u, n).await
                    }));
                }
                for t in tasks {
                    posted.push(t.await.expect("post task"));
                }
                format!(
                    "{rate} msg/s offered for {secs} s by {} (open loop)",
                    match who {
                        Who::Random => "a random member per post",
                        _ => "the owner",
                    }
                )
            }
            Shape::Saturated { posters, msgs, who } => {
                let left = Arc::new(AtomicUsize::new(msgs));
                let mut tasks = Vec::new();
                for k in 0..posters {
                    let (http, track, chat, left) = (
                        self.http.clone(),
                        self.track.clone(),
                        self.chat.clone(),
                        left.clone(),
                    );
                    let members = self.members.clone();
                    let mut rng = StdRng::seed_from_u64(self.args.seed + 1 + k as u64);
                    tasks.push(tokio::spawn(async move {
                        let mut out = Vec::new();
                        while left
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                                l.checked_sub(1)
                            })
                            .is_ok()
                        {
                            let Some(n) = track.claim() else { break };
                            let u = match who {
                                Who::Random => &members[rng.gen_range(0..members.len())],
                                Who::Fixed => &members[k],
                                Who::Owner => &members[0],
                            };
                            out.push(post(&http, &track, &chat, u, n).await);
                        }
                        out
                    }));
                }
                for t in tasks {
                    posted.extend(t.await.expect("poster"));
                }
                format!(
                    "{posters} posters, each posts again when answered, {}",
                    match who {
                        Who::Random => "a random member per post",
                        _ => "fixed members",
                    }
                )
            }
        };
        let post_secs = t0.elapsed().as_secs_f64();
        // Every accepted message until it reached every socket, or 30 s.
        let ok: Vec<usize> = posted.iter().filter(|p| p.1 == 200).map(|p| p.0).collect();
        for &n in &ok {
            let left = Duration::from_secs(30).saturating_sub(t0.elapsed());
            if !self.delivered(n, left.max(Duration::from_millis(1))).await {
                break;
            }
        }
        let cpu1 = self.args.pid.and_then(cpu_secs);
        let me1 = cpu_secs(std::process::id());
        let first_sent = ok
            .iter()
            .map(|&n| self.track.sent[n].load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        let last_seen = ok
            .iter()
            .map(|&n| self.track.last[n].load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let span = last_seen.saturating_sub(first_sent) as f64 / 1e9;
        let mut lat = Vec::with_capacity(ok.len());
        let mut first = Vec::with_capacity(ok.len());
        let mut got = 0u64;
        for &n in &ok {
            let g = self.track.got[n].load(Ordering::Acquire);
            got += u64::from(g);
            if g >= self.expected {
                let s = self.track.sent[n].load(Ordering::Relaxed);
                lat.push(self.track.last[n].load(Ordering::Relaxed).saturating_sub(s));
                first.push(
                    self.track.first[n]
                        .load(Ordering::Relaxed)
                        .saturating_sub(s),
                );
            }
        }
        lat.sort_unstable();
        first.sort_unstable();
        let mut rt: Vec<u64> = posted.iter().filter(|p| p.1 == 200).map(|p| p.2).collect();
        rt.sort_unstable();
        let mut statuses: Vec<(u16, usize)> = Vec::new();
        for p in posted.iter().filter(|p| p.1 != 200) {
            match statuses.iter_mut().find(|s| s.0 == p.1) {
                Some(s) => s.1 += 1,
                None => statuses.push((p.1, 1)),
            }
        }
        let want = ok.len() as u64 * u64::from(self.expected);
        println!("== {label}: {offered} ==");
        println!(
            "posted                 {}/{} accepted in {post_secs:.2} s → {:.1} requests/s{}; POST round trip p50 {:.1} ms, p99 {:.1} ms{}",
            ok.len(),
            posted.len(),
            ok.len() as f64 / post_secs,
            if statuses.is_empty() {
                String::new()
            } else {
                format!(" (refused: {statuses:?})")
            },
            ms(percentile(&rt, 0.5)),
            ms(percentile(&rt, 0.99)),
            if behind_ns > 1_000_000 {
                format!("; schedule fell behind by up to {:.1} ms", ms(behind_ns))
            } else {
                String::new()
            }
        );
        println!(
            "delivered              {got}/{want} frames to {} sockets in {span:.2} s (first post → last delivery) → {:.0} deliveries/s, {:.1} messages/s; sockets closed: {}",
            self.expected,
            got as f64 / span.max(1e-9),
            lat.len() as f64 / span.max(1e-9),
            self.track.closed.load(Ordering::Relaxed) - closed0
        );
        println!(
            "post → last delivery   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} messages complete); post → first delivery p50 {:.1} ms, p99 {:.1} ms",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or(0)),
            lat.len(),
            ok.len(),
            ms(percentile(&first, 0.5)),
            ms(percentile(&first, 0.99)),
        );
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            let c = b - a;
            println!(
                "CPU                    server {c:.2} s → {:.0} µs per message, {:.2} µs per delivery; load generator {:.2} s",
                c * 1e6 / ok.len().max(1) as f64,
                c * 1e6 / got.max(1) as f64,
                me1.zip(me0).map_or(0.0, |(b, a)| b - a)
            );
        }
        println!();
    }

    async fn scenarios(&self, full: bool) {
        let a = &self.args;
        let sockets = if full {
            format!(" ({} sockets open)", a.users)
        } else {
            String::new()
        };
        self.run(
            &format!("one-at-a-time{sockets}"),
            Shape::OneAtATime { msgs: a.seq_msgs },
        )
        .await;
        if !full {
            for &rate in &a.rates {
                for who in [Who::Owner, Who::Random] {
                    let name = match who {
                        Who::Random => "steady-random",
                        _ => "steady-owner",
                    };
                    self.run(
                        &format!("{name} {rate}/s"),
                        Shape::Steady {
                            rate,
                            secs: a.steady_secs,
                            who,
                        },
                    )
                    .await;
                    settle().await;
                }
            }
        }
        for who in [Who::Fixed, Who::Random] {
            let name = match who {
                Who::Random => "saturated-random",
                _ => "saturated-fixed",
            };
            self.run(
                &format!("{name} x{}{sockets}", a.posters),
                Shape::Saturated {
                    posters: a.posters,
                    msgs: a.sat_msgs,
                    who,
                },
            )
            .await;
            settle().await;
        }
    }
}

/// Lets the server finish what it was doing (and the allocator settle) before the next step.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

async fn open_sockets(
    args: &Args,
    users: &Arc<Vec<User>>,
    range: std::ops::Range<usize>,
    track: &Arc<Track>,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let t = Instant::now();
    let n = range.len();
    let addr = args.addr;
    let results = bounded(range, 64, |i| {
        let (users, track, stop) = (users.clone(), track.clone(), stop.clone());
        async move { open_socket(addr, i, &users[i], track, stop).await }
    })
    .await;
    print_calls(
        &format!("open {n} sockets"),
        &results,
        t.elapsed().as_secs_f64(),
    );
    results.into_iter().filter_map(|r| r.0.ok()).collect()
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    now_ns();
    let http = Arc::new(Http {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client"),
        base: format!("http://{}", args.addr),
    });
    let pid = args.pid;
    println!(
        "cs-fanout: users {} (sockets), group {}, registrations in flight {}, posters {}, cpus {}",
        args.users,
        args.group,
        args.concurrency,
        args.posters,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let m_start = mem(pid);

    // 1. Users, each with one device session.
    let t = Instant::now();
    let warm = args.users.min(200);
    let prefix = args.prefix.clone();
    let mut regs = bounded(0..warm, args.concurrency, |i| {
        let (http, prefix) = (http.clone(), prefix.clone());
        async move { register(&http, &prefix, i).await }
    })
    .await;
    let m_warm = mem(pid);
    regs.extend(
        bounded(warm..args.users, args.concurrency, |i| {
            let (http, prefix) = (http.clone(), prefix.clone());
            async move { register(&http, &prefix, i).await }
        })
        .await,
    );
    let reg_secs = t.elapsed().as_secs_f64();
    print_calls("register (Argon2)", &regs, reg_secs);
    let m_users = mem(pid);
    let users: Vec<User> = regs.into_iter().filter_map(|r| r.0.ok()).collect();
    if users.len() != args.users {
        eprintln!("cs-fanout: only {} users registered", users.len());
        std::process::exit(1);
    }
    print_mem_delta("server memory", m_start, m_warm, warm);
    print_mem_delta("  per user + session", m_warm, m_users, args.users - warm);
    let users = Arc::new(users);
    if args.logins > 0 {
        let t = Instant::now();
        let logins = bounded(0..args.logins, args.concurrency, |i| {
            let (http, users) = (http.clone(), users.clone());
            async move { login(&http, &users[i], i).await }
        })
        .await;
        print_calls("login (Argon2)", &logins, t.elapsed().as_secs_f64());
    }

    // 2. The group, then one authenticated request per session.
    let t = Instant::now();
    let owner = &users[0];
    let first: Vec<i64> = users[1..args.group.min(10)].iter().map(|u| u.id).collect();
    let (s, v) = http
        .call(
            Method::POST,
            "/chats",
            Some(&owner.token),
            Some(json!({"participants": first, "isPersonal": false, "title": "Fan-out bench"})),
        )
        .await
        .expect("create chat");
    let Some(chat) = v["id"].as_str().filter(|_| s == StatusCode::OK) else {
        eprintln!("cs-fanout: POST /chats: {s} {v}");
        std::process::exit(1);
    };
    let chat: Arc<str> = chat.into();
    for batch in users[args.group.min(10)..args.group].chunks(10) {
        let ids: Vec<i64> = batch.iter().map(|u| u.id).collect();
        let (s, v) = http
            .call(
                Method::POST,
                &format!("/chats/{chat}/users"),
                Some(&owner.token),
                Some(json!({"users": ids})),
            )
            .await
            .expect("add users");
        if s != StatusCode::OK {
            eprintln!("cs-fanout: POST /chats/<id>/users: {s} {v}");
            std::process::exit(1);
        }
    }
    println!(
        "group                  {} members in {:.1} s (POST /chats, then POST /chats/<id>/users ten at a time)",
        args.group,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mes = bounded(0..args.users, 16, |i| {
        let (http, users) = (http.clone(), users.clone());
        async move {
            match http
                .call(Method::GET, "/users/me", Some(&users[i].token), None)
                .await?
            {
                (StatusCode::OK, _) => Ok(()),
                (s, _) => Err(format!("GET /users/me: {s}")),
            }
        }
    })
    .await;
    print_calls("GET /users/me", &mes, t.elapsed().as_secs_f64());
    settle().await;

    // 3. The group's sockets.
    let track = Arc::new(Track::new(
        2 * (args.seq_msgs + 2 * args.sat_msgs)
            + args
                .rates
                .iter()
                .map(|r| 2 * (r * args.steady_secs).round() as usize)
                .sum::<usize>()
            + 16,
    ));
    let (stop_tx, stop) = watch::channel(false);
    let m0 = mem(pid);
    let mut sockets = open_sockets(&args, &users, 0..args.group, &track, &stop).await;
    settle().await;
    let m1 = mem(pid);
    print_mem_delta("sockets (group)", m0, m1, args.group);
    println!();
    if sockets.len() != args.group {
        eprintln!("cs-fanout: only {} group sockets open", sockets.len());
        std::process::exit(1);
    }

    // 4. Fan-out with only the group's sockets.
    let bench = Bench {
        http: http.clone(),
        track: track.clone(),
        members: Arc::new(users[..args.group].to_vec()),
        chat,
        expected: args.group as u32,
        args,
    };
    bench.scenarios(false).await;
    let args = &bench.args;

    // 5. Everyone else's socket, idle.
    if args.users > args.group {
        settle().await;
        let m2 = mem(pid);
        sockets.extend(open_sockets(args, &users, args.group..args.users, &track, &stop).await);
        settle().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let m3 = mem(pid);
        let idle = args.users - args.group;
        print_mem_delta("sockets (idle)", m2, m3, idle);
        print_mem_delta("sockets (all)", m0, m3, args.users);
        println!(
            "open sockets           {} (closed by the server so far: {})",
            sockets.len(),
            track.closed.load(Ordering::Relaxed)
        );
        println!();

        // 6. Fan-out with every socket open.
        bench.scenarios(true).await;
    }
    println!(
        "frames read: {} benchmark messages, {} other",
        track.frames.load(Ordering::Relaxed),
        track.other.load(Ordering::Relaxed)
    );
    let m_end = mem(pid);
    let _ = stop_tx.send(true);
    for s in sockets {
        let _ = s.await;
    }
    settle().await;
    print_mem_delta("after closing", m_end, mem(pid), users.len());
}
