//! `xmpp-load`: drives N XMPP clients over plain TCP against a server and reports connects/s,
//! messages/s, delivery latency (p50/p99) and the server's memory per connection.
//!
//! Each client opens a stream, authenticates with SASL PLAIN, binds a resource and sends initial
//! presence (optionally registering first with XEP-0077 in-band registration). Then every client
//! sends `--messages` chat messages to the next client (`i+1 mod N`), one every `--interval-ms`;
//! the body carries the send time, so the receiver measures end-to-end latency. Server memory is
//! read from `/proc/<pid>/status` (VmRSS) before the clients connect and after they all have.
//!
//! ```text
//! xmpp-load --host 127.0.0.1 --port 5222 --domain localhost --users-file users.txt \
//!     --clients 1000 --messages 20 --interval-ms 100 --pid 1234 [--register] [--label confab]
//! ```
//! `users.txt`: one `username password` per line (the JID local part).
//!
//! More options: `--rate R` (all clients together offer R msg/s on a fixed schedule; overrides
//! `--interval-ms`), `--history` (adds `<extraParams><save_to_history>1</save_to_history></extraParams>`),
//! `--messages 0` (idle mode: connect, read RSS after `--settle-ms`, hold `--hold-secs`, close).
//! With `--pid`, the server's utime+stime (`/proc/<pid>/stat`) over the message phase gives
//! messages per server CPU-second; `--cpu-pids P,Q,…` adds other processes' CPU to it (the other
//! nodes of a cluster, PostgreSQL, nats-server). `--ports A,B,…` spreads the clients over several
//! nodes: client `i` connects to the `i mod n`-th port.
//!
//! For robustness runs (`scripts/chaos.sh`): `--sm` enables XEP-0198 stream management (each client
//! asks for an ack after every message and answers the server's ack requests), `--record PATH`
//! writes what happened to every message id (`sent`, `acked` by the server's `<a h/>`, `error` when
//! bounced, `recv` when received), `--to-file PATH` sends to the JIDs listed there (e.g. users who
//! are offline) instead of to the next client, and `--id-seed N` makes the ids of one run unique (24 hex digits,
//! the SDK's shape). With `--messages 0 --record`, the idle clients record what they receive (offline
//! messages) while they hold. `--room JID` sends groupchat messages to that room (a group dialog whose
//! members are the clients) instead of chat messages to other clients.
//!
//! First contacts: `--random-peers` sends each message to a random other client instead of the next
//! one, so nearly every message opens a new conversation (`--seed N` fixes the draw). Saturation:
//! `--in-flight K` (with `--interval-ms 0`) lets each client have at most K of its messages not yet
//! received by their recipient, so the offered load follows what the server delivers.
//!
//! Where a tail comes from: `--timeline` prints the latency per half second of send time;
//! `--pause-ms N` waits N ms between the logins and the first message.
//!
//! Against a loopback server, client `i` connects from source address `127.0.1.(i % 250 + 1)`: with
//! thousands of connections from one address to one port, the kernel's search for a free ephemeral
//! port in `connect()` grew to most of the load generator's CPU, and so throttled the login rate it
//! measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use confab_procstat::{cpu_secs, rss_kib};
use confab_xmpp::stream::{Framing, StreamEvent, StreamReader};
use confab_xmpp::xml::Element;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

const NS_SM: &str = "urn:xmpp:sm:3";

/// What one client saw of its own messages and the ones it received, for `--record`.
#[derive(Default)]
struct Track {
    /// Ids written, in order.
    sent: Vec<String>,
    /// The server's latest `<a h/>`. The initial presence is the first stanza it counts, so the first
    /// `h - 1` sent ids are acknowledged.
    acked_h: u32,
    /// Stanzas received since stream management was enabled (our `h`).
    handled: u32,
    recv: Vec<String>,
    errors: Vec<String>,
}

impl Track {
    /// Notes what one incoming element says; returns our ack when the server asks for one.
    fn observe(&mut self, e: &Element) -> Option<String> {
        match e.name.as_str() {
            "a" if e.ns == NS_SM => {
                if let Some(h) = e.attr("h").and_then(|h| h.parse::<u32>().ok()) {
                    self.acked_h = self.acked_h.max(h);
                }
                None
            }
            "r" if e.ns == NS_SM => Some(format!("<a xmlns='{NS_SM}' h='{}'/>", self.handled)),
            "message" | "presence" | "iq" => {
                self.handled = self.handled.wrapping_add(1);
                if let Some(id) = e.attr("id").filter(|_| e.name == "message") {
                    if e.attr("type") == Some("error") {
                        self.errors.push(id.to_string());
                    } else if e.child_named("body").is_some() {
                        self.recv.push(id.to_string());
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn write_to(&self, out: &mut String) {
        use std::fmt::Write as _;
        let acked = (self.acked_h as usize)
            .saturating_sub(1)
            .min(self.sent.len());
        for (i, id) in self.sent.iter().enumerate() {
            let _ = writeln!(out, "sent {id}");
            if i < acked {
                let _ = writeln!(out, "acked {id}");
            }
        }
        for id in &self.recv {
            let _ = writeln!(out, "recv {id}");
        }
        for id in &self.errors {
            let _ = writeln!(out, "error {id}");
        }
    }
}

fn write_record(args: &Args, tracks: &[Arc<Mutex<Track>>]) {
    let Some(path) = &args.record else { return };
    let mut out = String::new();
    for t in tracks {
        t.lock().unwrap().write_to(&mut out);
    }
    if let Err(e) = std::fs::write(path, out) {
        eprintln!("xmpp-load: writing {path}: {e}");
    }
}

struct Args {
    host: String,
    port: u16,
    domain: String,
    users_file: String,
    to_file: Option<String>,
    /// Send groupchat messages to this room JID instead of chat messages to other clients.
    room: Option<String>,
    clients: usize,
    concurrency: usize,
    messages: usize,
    interval: Duration,
    pid: Option<u32>,
    /// More processes whose CPU counts as the server's (`--cpu-pids`: the other nodes, the
    /// database, the bus).
    cpu_pids: Vec<u32>,
    /// Client `i` connects to `ports[i % len]` (`--ports`: several nodes); else to `port`.
    ports: Vec<u16>,
    register: bool,
    label: String,
    history: bool,
    settle: Duration,
    hold: Duration,
    sm: bool,
    record: Option<String>,
    id_seed: Option<u32>,
    random_peers: bool,
    seed: u64,
    in_flight: Option<usize>,
    /// Print the latency per half second of send time (`--timeline`): where a tail comes from.
    timeline: bool,
    /// Wait between the logins and the first message (`--pause-ms`), for the server to finish
    /// what the logins started.
    pause: Duration,
}

fn parse_args() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 5222,
        domain: "localhost".into(),
        users_file: String::new(),
        to_file: None,
        room: None,
        clients: 100,
        concurrency: 50,
        messages: 10,
        interval: Duration::from_millis(100),
        pid: None,
        cpu_pids: Vec::new(),
        ports: Vec::new(),
        register: false,
        label: "server".into(),
        history: false,
        settle: Duration::from_millis(500),
        hold: Duration::ZERO,
        sm: false,
        record: None,
        id_seed: None,
        random_peers: false,
        seed: 1,
        in_flight: None,
        timeline: false,
        pause: Duration::ZERO,
    };
    let mut rate: Option<f64> = None;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{k} needs a value")))
        };
        match k.as_str() {
            "--host" => a.host = v(),
            "--port" => a.port = v().parse().unwrap_or_else(|_| usage("bad --port")),
            "--domain" => a.domain = v(),
            "--users-file" => a.users_file = v(),
            "--to-file" => a.to_file = Some(v()),
            "--room" => a.room = Some(v()),
            "--clients" => a.clients = v().parse().unwrap_or_else(|_| usage("bad --clients")),
            "--concurrency" => {
                a.concurrency = v().parse().unwrap_or_else(|_| usage("bad --concurrency"))
            }
            "--messages" => a.messages = v().parse().unwrap_or_else(|_| usage("bad --messages")),
            "--interval-ms" => {
                a.interval = Duration::from_millis(
                    v().parse().unwrap_or_else(|_| usage("bad --interval-ms")),
                )
            }
            "--pid" => a.pid = Some(v().parse().unwrap_or_else(|_| usage("bad --pid"))),
            "--cpu-pids" => {
                a.cpu_pids = v()
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse().unwrap_or_else(|_| usage("bad --cpu-pids")))
                    .collect()
            }
            "--ports" => {
                a.ports = v()
                    .split(',')
                    .map(|p| p.parse().unwrap_or_else(|_| usage("bad --ports")))
                    .collect()
            }
            "--register" => a.register = true,
            "--label" => a.label = v(),
            "--history" => a.history = true,
            "--sm" => a.sm = true,
            "--record" => a.record = Some(v()),
            "--id-seed" => a.id_seed = Some(v().parse().unwrap_or_else(|_| usage("bad --id-seed"))),
            "--random-peers" => a.random_peers = true,
            "--timeline" => a.timeline = true,
            "--seed" => a.seed = v().parse().unwrap_or_else(|_| usage("bad --seed")),
            "--in-flight" => {
                a.in_flight = Some(v().parse().unwrap_or_else(|_| usage("bad --in-flight")))
            }
            "--rate" => rate = Some(v().parse().unwrap_or_else(|_| usage("bad --rate"))),
            "--pause-ms" => {
                a.pause =
                    Duration::from_millis(v().parse().unwrap_or_else(|_| usage("bad --pause-ms")))
            }
            "--settle-ms" => {
                a.settle =
                    Duration::from_millis(v().parse().unwrap_or_else(|_| usage("bad --settle-ms")))
            }
            "--hold-secs" => {
                a.hold =
                    Duration::from_secs(v().parse().unwrap_or_else(|_| usage("bad --hold-secs")))
            }
            _ => usage(&format!("unknown argument {k}")),
        }
    }
    if a.users_file.is_empty() {
        usage("--users-file is required");
    }
    if a.in_flight == Some(0) {
        usage("--in-flight must be at least 1");
    }
    if a.random_peers && a.to_file.is_some() {
        usage("--random-peers and --to-file exclude each other");
    }
    if a.room.is_some() && (a.random_peers || a.to_file.is_some() || a.in_flight.is_some()) {
        usage("--room excludes --random-peers, --to-file and --in-flight");
    }
    // --rate R: all clients together offer R messages/s, i.e. each sends every clients/R seconds.
    if let Some(r) = rate {
        if r <= 0.0 {
            usage("--rate must be positive");
        }
        a.interval = Duration::from_secs_f64(a.clients as f64 / r);
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!("xmpp-load: {msg}\nsee the doc comment in crates/confab-xmpp-load/src/main.rs");
    std::process::exit(2)
}

/// The CPU time of `--pid` and every `--cpu-pids` process together.
fn server_cpu(args: &Args) -> Option<f64> {
    let own = cpu_secs(args.pid?)?;
    Some(
        own + args
            .cpu_pids
            .iter()
            .filter_map(|p| cpu_secs(*p))
            .sum::<f64>(),
    )
}

/// One XMPP connection's reading side.
struct Reader {
    r: OwnedReadHalf,
    reader: StreamReader,
    buf: Vec<u8>,
}

impl Reader {
    async fn next(&mut self) -> Result<StreamEvent, String> {
        loop {
            match self.reader.next_event() {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => {}
                Err(e) => return Err(format!("bad XML from server: {e:?}")),
            }
            self.buf.resize(16384, 0);
            let n = self
                .r
                .read(&mut self.buf)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.reader.feed(&self.buf[..n]);
        }
    }

    async fn element(&mut self) -> Result<Element, String> {
        loop {
            match self.next().await? {
                StreamEvent::Element(e) => return Ok(e),
                StreamEvent::Open(_) => continue,
                StreamEvent::Close => return Err("stream closed".into()),
            }
        }
    }

    async fn until(&mut self, pred: impl Fn(&Element) -> bool) -> Result<Element, String> {
        loop {
            let e = self.element().await?;
            if pred(&e) {
                return Ok(e);
            }
        }
    }
}

fn header(domain: &str) -> String {
    format!("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>")
}

/// Opens client `client`'s TCP connection; from its own loopback source address when the server is
/// on loopback (see the module comment).
async fn connect(args: &Args, client: usize) -> std::io::Result<TcpStream> {
    let port = match args.ports.as_slice() {
        [] => args.port,
        ports => ports[client % ports.len()],
    };
    let server = tokio::net::lookup_host((args.host.as_str(), port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("host has no address"))?;
    match server.ip() {
        std::net::IpAddr::V4(ip) if ip.is_loopback() => {
            let socket = TcpSocket::new_v4()?;
            let source = std::net::Ipv4Addr::new(127, 0, 1, (client % 250 + 1) as u8);
            socket.bind((source, 0).into())?;
            socket.connect(server).await
        }
        _ => TcpStream::connect(server).await,
    }
}

/// Connects, (registers,) authenticates, binds and sends initial presence.
async fn login(
    args: &Args,
    client: usize,
    user: &str,
    password: &str,
) -> Result<(Reader, OwnedWriteHalf, String), String> {
    let tcp = connect(args, client).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).ok();
    let (r, mut w) = tcp.into_split();
    let mut rd = Reader {
        r,
        reader: StreamReader::new(Framing::Tcp, 1 << 20),
        buf: Vec::new(),
    };
    w.write_all(header(&args.domain).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    rd.until(|e| e.local_name() == "features").await?;
    if args.register {
        let reg = format!(
            "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>{user}</username><password>{password}</password></query></iq>"
        );
        w.write_all(reg.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let r = rd.until(|e| e.attr("id") == Some("reg1")).await?;
        // 409 conflict = already registered: fine.
        if r.attr("type") != Some("result") && !r.to_xml().contains("conflict") {
            return Err(format!("registration failed: {}", r.to_xml()));
        }
    }
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    w.write_all(
        format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")
            .as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let r = rd
        .until(|e| matches!(e.local_name(), "success" | "failure"))
        .await?;
    if r.local_name() != "success" {
        return Err(format!("auth failed for {user}: {}", r.to_xml()));
    }
    rd.reader.reset();
    w.write_all(header(&args.domain).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    rd.until(|e| e.local_name() == "features").await?;
    w.write_all(b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>load</resource></bind></iq>")
        .await
        .map_err(|e| e.to_string())?;
    let r = rd.until(|e| e.attr("id") == Some("bind1")).await?;
    let jid = r
        .elements()
        .next()
        .and_then(|b| b.elements().next())
        .map(|j| j.text())
        .ok_or_else(|| format!("bind failed: {}", r.to_xml()))?;
    if args.sm {
        w.write_all(b"<enable xmlns='urn:xmpp:sm:3'/>")
            .await
            .map_err(|e| e.to_string())?;
        let r = rd
            .until(|e| matches!(e.local_name(), "enabled" | "failed"))
            .await?;
        if r.local_name() != "enabled" {
            return Err(format!("stream management refused: {}", r.to_xml()));
        }
    }
    w.write_all(b"<presence/>")
        .await
        .map_err(|e| e.to_string())?;
    Ok((rd, w, jid))
}

/// Messages, p50, p99 and max latency per half second of send time.
fn print_timeline(sent_and_latency: &[(u64, u64)]) {
    const SLOT_US: u64 = 500_000;
    let Some(first) = sent_and_latency.iter().map(|&(s, _)| s).min() else {
        return;
    };
    let mut slots: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for &(sent, latency) in sent_and_latency {
        slots
            .entry((sent - first) / SLOT_US)
            .or_default()
            .push(latency);
    }
    println!("timeline (by send time)  from_s  messages  p50_ms  p99_ms  max_ms");
    for (slot, mut l) in slots {
        l.sort_unstable();
        println!(
            "                         {:6.1}  {:8}  {:6.2}  {:6.2}  {:6.2}",
            (slot * SLOT_US) as f64 / 1e6,
            l.len(),
            percentile(&l, 0.5) as f64 / 1000.0,
            percentile(&l, 0.99) as f64 / 1000.0,
            l.last().copied().unwrap_or(0) as f64 / 1000.0
        );
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    let text = std::fs::read_to_string(&args.users_file).unwrap_or_else(|e| usage(&e.to_string()));
    let users: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some((p.next()?.to_string(), p.next()?.to_string()))
        })
        .take(args.clients)
        .collect();
    let n = users.len();
    if n < 2 {
        usage("need at least 2 users");
    }
    let rss_before = args.pid.and_then(rss_kib);

    // Phase 1: connect everyone.
    let sem = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let connect_lat = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (u, p)) in users.iter().cloned().enumerate() {
        let (args, sem, lat) = (args.clone(), sem.clone(), connect_lat.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.expect("semaphore");
            let t = Instant::now();
            let r = login(&args, i, &u, &p).await;
            lat.lock().unwrap().push(t.elapsed().as_micros() as u64);
            r.map_err(|e| format!("client {i}: {e}"))
        }));
    }
    let mut conns = Vec::with_capacity(n);
    let mut failures = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(c) => conns.push(c),
            Err(e) => {
                failures += 1;
                if failures <= 5 {
                    eprintln!("{e}");
                }
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    if conns.len() < 2 {
        eprintln!("too few clients connected ({})", conns.len());
        std::process::exit(1);
    }
    // Let the server settle before reading its memory.
    tokio::time::sleep(args.settle).await;
    let rss_after = args.pid.and_then(rss_kib);
    if args.messages == 0 {
        // Idle mode: report the connections and the memory, hold them, then close.
        let m = conns.len();
        let mut cl = connect_lat.lock().unwrap().clone();
        cl.sort_unstable();
        println!("== {} ==", args.label);
        println!("clients connected      {m}/{n} ({failures} failed)");
        println!(
            "connect phase          {:.2} s → {:.0} connects/s (concurrency {}); login p50 {:.1} ms, p99 {:.1} ms",
            connect_secs,
            m as f64 / connect_secs,
            args.concurrency,
            percentile(&cl, 0.5) as f64 / 1000.0,
            percentile(&cl, 0.99) as f64 / 1000.0
        );
        print_rss(rss_before, rss_after, m);
        if args.record.is_none() {
            tokio::time::sleep(args.hold).await;
            let mut conns = conns;
            for (_, w, _) in conns.iter_mut() {
                let _ = w.write_all(b"</stream:stream>").await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        // Recording: read (and ack) what arrives while holding, e.g. offline messages.
        let mut tracks = Vec::new();
        for (mut rd, w, _) in conns {
            let track = Arc::new(Mutex::new(Track::default()));
            tracks.push(track.clone());
            let w = Arc::new(tokio::sync::Mutex::new(w));
            tokio::spawn(async move {
                while let Ok(e) = rd.element().await {
                    let reply = track.lock().unwrap().observe(&e);
                    if let Some(a) = reply {
                        let _ = w.lock().await.write_all(a.as_bytes()).await;
                    }
                }
            });
        }
        tokio::time::sleep(args.hold).await;
        write_record(&args, &tracks);
        return;
    }

    // Phase 2: messages to the next client.
    tokio::time::sleep(args.pause).await;
    let m = conns.len();
    let jids: Arc<Vec<String>> = Arc::new(
        conns
            .iter()
            .map(|c| c.2.split('/').next().unwrap_or("").to_string())
            .collect(),
    );
    let targets: Option<Vec<String>> = args.to_file.as_ref().map(|f| {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| usage(&e.to_string()));
        let t: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        if t.is_empty() {
            usage("--to-file lists no JIDs");
        }
        t
    });
    let cpu_before = server_cpu(&args);
    let epoch = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let lats = Arc::new(Mutex::new(Vec::with_capacity(m * args.messages)));
    // In a room every member (the sender too) gets every message.
    let expected = (m * args.messages * if args.room.is_some() { m } else { 1 }) as u64;
    let done = Arc::new(tokio::sync::Notify::new());
    // Readers still connected: when the server goes away, waiting for the rest is pointless.
    let alive = Arc::new(std::sync::atomic::AtomicUsize::new(m));
    let mut writers = Vec::new();
    let mut tracks = Vec::new();
    let mut halves = Vec::new();
    // One window per sender for --in-flight: the recipient gives the sender's permit back.
    let windows: Arc<Vec<Semaphore>> = Arc::new(
        (0..m)
            .map(|_| Semaphore::new(args.in_flight.unwrap_or(0)))
            .collect(),
    );
    for (i, (mut rd, w, _)) in conns.into_iter().enumerate() {
        let (received, lats, done, alive, reader_windows) = (
            received.clone(),
            lats.clone(),
            done.clone(),
            alive.clone(),
            windows.clone(),
        );
        let in_flight = args.in_flight.is_some();
        let track = Arc::new(Mutex::new(Track::default()));
        tracks.push(track.clone());
        let w = Arc::new(tokio::sync::Mutex::new(w));
        halves.push(w.clone());
        let reader_w = w.clone();
        let reader_track = track.clone();
        tokio::spawn(async move {
            while let Ok(e) = rd.element().await {
                let reply = reader_track.lock().unwrap().observe(&e);
                if let Some(a) = reply {
                    let _ = reader_w.lock().await.write_all(a.as_bytes()).await;
                }
                if e.name != "message" {
                    continue;
                }
                let body = e
                    .elements()
                    .find(|c| c.local_name() == "body")
                    .map(|b| b.text());
                if let Some(t) = body.as_deref().and_then(|b| b.strip_prefix("t=")) {
                    // Body: `t=<send time µs> s=<sender index>`.
                    let (t, sender) = t.split_once(" s=").unwrap_or((t, ""));
                    if in_flight {
                        if let Some(w) = sender
                            .parse::<usize>()
                            .ok()
                            .and_then(|s| reader_windows.get(s))
                        {
                            w.add_permits(1);
                        }
                    }
                    if let Ok(sent) = t.parse::<u64>() {
                        let now = epoch.elapsed().as_micros() as u64;
                        lats.lock().unwrap().push((sent, now.saturating_sub(sent)));
                        if received.fetch_add(1, Ordering::Relaxed) + 1 == expected {
                            done.notify_one();
                        }
                    }
                }
            }
            if alive.fetch_sub(1, Ordering::Relaxed) == 1 {
                done.notify_one();
            }
        });
        let fixed_to = match (&args.room, &targets) {
            (Some(room), _) => room.clone(),
            (None, Some(t)) => t[i % t.len()].clone(),
            (None, None) => jids[(i + 1) % m].clone(),
        };
        let kind = if args.room.is_some() {
            "groupchat"
        } else {
            "chat"
        };
        // Each client draws its own recipients, reproducibly for one --seed.
        let mut peers = args
            .random_peers
            .then(|| StdRng::seed_from_u64(args.seed.wrapping_mul(1_000_003) ^ i as u64));
        let jids = jids.clone();
        let window = args.in_flight.map(|_| windows.clone());
        let (count, interval, sm, seed) = (args.messages, args.interval, args.sm, args.id_seed);
        let extra = if args.history {
            "<extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams>"
        } else {
            ""
        };
        writers.push(tokio::spawn(async move {
            // Spread the clients' first sends over one interval.
            let start = tokio::time::Instant::now();
            if !interval.is_zero() {
                tokio::time::sleep(interval * (i as u32 % 100) / 100).await;
            }
            let start = start + interval * (i as u32 % 100) / 100;
            for k in 0..count {
                if let Some(w) = &window {
                    // The recipient's reader gives the permit back; a message that never arrives
                    // would hold it forever, so a client that waits too long stops sending.
                    match tokio::time::timeout(Duration::from_secs(30), w[i].acquire()).await {
                        Ok(Ok(p)) => p.forget(),
                        _ => break,
                    }
                }
                let to = match peers.as_mut() {
                    // Any client but this one.
                    Some(rng) if m > 1 => {
                        let j = rng.gen_range(0..m - 1);
                        &jids[if j >= i { j + 1 } else { j }]
                    }
                    _ => &fixed_to,
                };
                let t = epoch.elapsed().as_micros();
                let id = match seed {
                    // 24 hex digits, like the SDK's ids, unique per run.
                    Some(seed) => format!("{seed:08x}{i:06x}{k:010x}"),
                    None => format!("m{i}-{k}"),
                };
                let ack = if sm { "<r xmlns='urn:xmpp:sm:3'/>" } else { "" };
                let xml = format!(
                    "<message type='{kind}' to='{to}' id='{id}'><body>t={t} s={i}</body>{extra}</message>{ack}"
                );
                track.lock().unwrap().sent.push(id);
                if w.lock().await.write_all(xml.as_bytes()).await.is_err() {
                    break;
                }
                if !interval.is_zero() {
                    // Fixed schedule (no drift from write time), so the offered rate stays steady.
                    tokio::time::sleep_until(start + interval * (k as u32 + 1)).await;
                }
            }
        }));
    }
    for wtask in writers {
        wtask.await.expect("writer");
    }
    let send_secs = epoch.elapsed().as_secs_f64();
    // Messages to --to-file users are not received here: nothing to wait for.
    if targets.is_none() {
        let _ = tokio::time::timeout(Duration::from_secs(30), done.notified()).await;
    }
    let msg_secs = epoch.elapsed().as_secs_f64();
    let got = received.load(Ordering::Relaxed);
    let cpu_after = server_cpu(&args);

    let mut cl = connect_lat.lock().unwrap().clone();
    cl.sort_unstable();
    let sent_and_latency = lats.lock().unwrap().clone();
    if args.timeline {
        print_timeline(&sent_and_latency);
    }
    let mut ml: Vec<u64> = sent_and_latency.iter().map(|&(_, l)| l).collect();
    ml.sort_unstable();
    // The time until the last message arrived (or the wait gave up).
    let deliver_secs = if got == expected {
        msg_secs
    } else {
        msg_secs.max(send_secs)
    };
    println!("== {} ==", args.label);
    println!("clients connected      {m}/{n} ({failures} failed)");
    println!(
        "connect phase          {:.2} s → {:.0} connects/s (concurrency {}); login p50 {:.1} ms, p99 {:.1} ms",
        connect_secs,
        m as f64 / connect_secs,
        args.concurrency,
        percentile(&cl, 0.5) as f64 / 1000.0,
        percentile(&cl, 0.99) as f64 / 1000.0
    );
    println!(
        "messages               {got}/{expected} delivered in {:.2} s → {:.0} messages/s (sending took {:.2} s, interval {:.1} ms = {:.0} msg/s offered{})",
        deliver_secs,
        got as f64 / deliver_secs,
        send_secs,
        args.interval.as_secs_f64() * 1000.0,
        if args.interval.is_zero() { 0.0 } else { m as f64 / args.interval.as_secs_f64() },
        if args.history { ", save_to_history=1" } else { "" }
    );
    match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => println!(
            "server CPU             {:.2} s (utime+stime) during the message phase → {:.0} messages per CPU-second",
            a - b,
            got as f64 / (a - b).max(0.001)
        ),
        _ => println!("server CPU             (no --pid given)"),
    }
    println!(
        "latency                p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&ml, 0.5) as f64 / 1000.0,
        percentile(&ml, 0.99) as f64 / 1000.0,
        ml.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    print_rss(rss_before, rss_after, m);
    // A last ack request, so the record holds every acknowledgement.
    if args.sm && args.record.is_some() {
        for w in &halves {
            let _ = w
                .lock()
                .await
                .write_all(b"<r xmlns='urn:xmpp:sm:3'/>")
                .await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for w in &halves {
        let _ = w.lock().await.write_all(b"</stream:stream>").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_record(&args, &tracks);
}

fn print_rss(before: Option<u64>, after: Option<u64>, m: usize) {
    match (before, after) {
        (Some(b), Some(a)) => println!(
            "server RSS             {:.1} MiB before, {:.1} MiB with {m} clients → {:.1} KiB per connection",
            b as f64 / 1024.0,
            a as f64 / 1024.0,
            a.saturating_sub(b) as f64 / m as f64
        ),
        _ => println!("server RSS             (no --pid given)"),
    }
}
