//! Chaos across nodes: three senders on node C send 200 messages each to a user on node A (one
//! sender with `save_to_history=1`) while node C — the real binary — is `kill -9`ed at a random
//! moment. Every message node C acknowledged (XEP-0198 `<a h/>`) reaches the recipient exactly
//! once and in the order sent. Repeated `CONFAB_CLUSTER_CHAOS_ROUNDS` times (default 20); the
//! totals are printed. Needs PostgreSQL (see `scripts/postgres.sh`) and `nats-server`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use confab_testkit as common;

use common::process::ConfabProcess;
use common::xmpp::XmppClient;
use confab_xmpp::stream::StreamEvent;
use rand::Rng;

const SENDERS: usize = 3;
const MESSAGES: usize = 200;
/// Messages between two acknowledgement requests.
const BATCH: usize = 10;

fn rounds() -> usize {
    std::env::var("CONFAB_CLUSTER_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// Sends the sender's messages in batches, each followed by `<r/>`; returns how many the node
/// acknowledged before the connection died (or all were sent), and which it bounced with an error.
async fn send_all(
    mut c: XmppClient,
    round: usize,
    sender: usize,
    to: String,
) -> (usize, Vec<String>) {
    let save = u8::from(sender == 1);
    let mut acked = 0;
    let mut bounced = Vec::new();
    for start in (0..MESSAGES).step_by(BATCH) {
        let batch: String = (start..start + BATCH)
            .map(|i| {
                format!(
                    "<message to='{to}' type='chat' id='r{round}-s{sender}-{i:03}'><body>{i}</body>\
                     <extraParams xmlns='jabber:client'><save_to_history>{save}</save_to_history></extraParams></message>"
                )
            })
            .collect();
        if !c
            .try_send(&format!("{batch}<r xmlns='urn:xmpp:sm:3'/>"))
            .await
        {
            return (acked, bounced);
        }
        loop {
            match c.next_within(Duration::from_secs(30)).await {
                Some(StreamEvent::Element(e)) if e.name == "a" => {
                    acked = e.attr("h").and_then(|h| h.parse().ok()).unwrap_or(acked);
                    break;
                }
                Some(StreamEvent::Element(e)) => {
                    if e.name == "message" && e.attr("type") == Some("error") {
                        bounced.push(e.attr("id").unwrap_or_default().to_string());
                    }
                }
                _ => return (acked, bounced),
            }
        }
    }
    (acked, bounced)
}

#[tokio::test]
async fn acknowledged_messages_survive_a_node_killed_at_random_moments() {
    let Some((nats, database_url, a)) = common::postgres::first_node("confab_chaos", |c| {
        c.node_id = Some("chaos-a".into());
        c.node_timeout_secs = 2;
    })
    .await
    else {
        return;
    };
    let url = nats.url();
    let (rcpt, rt) = a.user("recipient").await;
    let mut senders = Vec::new();
    for k in 0..SENDERS {
        senders.push(a.user(&format!("sender{k}")).await);
    }
    let to = format!("{rcpt}-{}@localhost", a.app_id);
    let mut r = XmppClient::tcp(a.xmpp_addr()).await;
    r.login(rcpt, a.app_id, &rt).await;
    r.send("<presence/>").await;

    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CONFAB_DATABASE_URL", database_url.as_str()),
        ("CONFAB_NATS_URL", url.as_str()),
        ("CONFAB_NODE_ID", "chaos-c"),
        ("CONFAB_NODE_TIMEOUT_SECS", "2"),
    ];
    let bin = Path::new(env!("CARGO_BIN_EXE_confab"));
    let (mut total_acked, mut total_received) = (0, 0);
    for round in 0..rounds() {
        let mut c = ConfabProcess::serve(bin, dir.path(), &env).await;
        let mut tasks = Vec::new();
        for (k, (id, token)) in senders.iter().enumerate() {
            let mut client = XmppClient::tcp(c.xmpp).await;
            client.login(*id, a.app_id, token).await;
            client.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
            client.until(|e| e.name == "enabled").await;
            tasks.push(tokio::spawn(send_all(client, round, k, to.clone())));
        }
        let kill_after = rand::thread_rng().gen_range(0..400);
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        c.kill().await;
        let mut acked = Vec::new();
        for t in tasks {
            let (n, bounced) = t.await.unwrap();
            assert!(bounced.is_empty(), "round {round}: bounced {bounced:?}");
            acked.push(n);
        }

        // Every acknowledged message arrives, once, in order per sender; unacknowledged ones may.
        let prefix = format!("r{round}-s");
        let mut got: HashMap<usize, Vec<usize>> = HashMap::new();
        let complete = |got: &HashMap<usize, Vec<usize>>| {
            (0..SENDERS).all(|k| got.get(&k).map_or(0, Vec::len) >= acked[k])
        };
        while !complete(&got) {
            let Some(StreamEvent::Element(m)) = r.next_within(Duration::from_secs(10)).await else {
                panic!("round {round} (kill after {kill_after} ms): acked {acked:?}, got {got:?}");
            };
            let Some(rest) = m.attr("id").and_then(|id| id.strip_prefix(&prefix)) else {
                continue;
            };
            let (k, i) = rest.split_once('-').unwrap();
            got.entry(k.parse().unwrap())
                .or_default()
                .push(i.parse().unwrap());
        }
        // Stragglers of this round (unacknowledged, delivered) come now or never.
        while let Some(StreamEvent::Element(m)) = r.next_within(Duration::from_millis(300)).await {
            if let Some(rest) = m.attr("id").and_then(|id| id.strip_prefix(&prefix)) {
                let (k, i) = rest.split_once('-').unwrap();
                got.entry(k.parse().unwrap())
                    .or_default()
                    .push(i.parse().unwrap());
            }
        }
        for (k, acked) in acked.iter().enumerate() {
            let seq = got.remove(&k).unwrap_or_default();
            let expected: Vec<usize> = (0..seq.len()).collect();
            assert_eq!(
                seq, expected,
                "round {round}, sender {k}: in order, each once, no gap (acked {acked})"
            );
            total_received += seq.len();
        }
        total_acked += acked.iter().sum::<usize>();
    }
    println!(
        "cluster chaos: {} rounds, {} messages acknowledged, {} received, lost 0, duplicated 0",
        rounds(),
        total_acked,
        total_received
    );
    a.stop().await;
}

/// The same three senders, on node B, while nats-server is killed at a random moment and comes
/// back 1.5 s later (`CONFAB_CLUSTER_BUS_CHAOS_ROUNDS` rounds, default 5). Every message node B
/// acknowledged reaches the recipient on node A exactly once: live, or stored offline while the bus
/// was down and handed to the open session when it came back. Order per sender is counted, not
/// required: what was stored offline arrives after what went live once the bus was back.
#[tokio::test]
async fn acknowledged_messages_survive_the_bus_restarting() {
    // On PostgreSQL, as a cluster runs: two nodes writing one SQLite file get "database is locked".
    let Some((mut nats, _database_url, a)) =
        common::postgres::first_node("confab_bus_chaos", |c| {
            c.node_id = Some("bus-a".into());
        })
        .await
    else {
        return;
    };
    let url = nats.url();
    let b = a
        .another_node(|c| {
            c.nats_url = Some(url.clone());
            c.node_id = Some("bus-b".into());
        })
        .await;
    let (rcpt, rt) = a.user("recipient").await;
    let mut senders = Vec::new();
    for k in 0..SENDERS {
        senders.push(a.user(&format!("sender{k}")).await);
    }
    let to = format!("{rcpt}-{}@localhost", a.app_id);
    let mut r = XmppClient::tcp(a.xmpp_addr()).await;
    r.login(rcpt, a.app_id, &rt).await;
    r.send("<presence/>").await;
    let rounds = std::env::var("CONFAB_CLUSTER_BUS_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (mut total_acked, mut total_received, mut out_of_order) = (0, 0, 0);
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for (k, (id, token)) in senders.iter().enumerate() {
            let mut client = XmppClient::tcp(b.xmpp_addr()).await;
            client.login(*id, a.app_id, token).await;
            client.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
            client.until(|e| e.name == "enabled").await;
            tasks.push(tokio::spawn(send_all(client, round, k, to.clone())));
        }
        let kill_after = rand::thread_rng().gen_range(0..300);
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        nats.restart_after(Duration::from_millis(1500)).await;
        let mut acked = Vec::new();
        for t in tasks {
            let (n, bounced) = t.await.unwrap();
            assert!(bounced.is_empty(), "round {round}: bounced {bounced:?}");
            acked.push(n);
        }
        assert_eq!(
            acked,
            vec![MESSAGES; SENDERS],
            "node B stayed up: all acknowledged"
        );

        let prefix = format!("r{round}-s");
        let mut got: HashMap<usize, Vec<usize>> = HashMap::new();
        while (0..SENDERS).any(|k| got.get(&k).map_or(0, Vec::len) < MESSAGES) {
            let Some(StreamEvent::Element(m)) = r.next_within(Duration::from_secs(15)).await else {
                let counts: Vec<usize> = (0..SENDERS)
                    .map(|k| got.get(&k).map_or(0, Vec::len))
                    .collect();
                panic!("round {round} (bus killed after {kill_after} ms): got {counts:?}");
            };
            if let Some(rest) = m.attr("id").and_then(|id| id.strip_prefix(&prefix)) {
                let (k, i) = rest.split_once('-').unwrap();
                got.entry(k.parse().unwrap())
                    .or_default()
                    .push(i.parse().unwrap());
            }
        }
        r.nothing_for(Duration::from_millis(300)).await;
        for k in 0..SENDERS {
            let mut seq = got.remove(&k).unwrap_or_default();
            out_of_order += seq.windows(2).filter(|w| w[0] > w[1]).count();
            seq.sort();
            let expected: Vec<usize> = (0..MESSAGES).collect();
            assert_eq!(seq, expected, "round {round}, sender {k}: each once");
            total_received += MESSAGES;
        }
        total_acked += acked.iter().sum::<usize>();
    }
    println!(
        "bus chaos: {rounds} rounds, {total_acked} messages acknowledged, {total_received} \
         received, lost 0, duplicated 0, {out_of_order} arrived before an earlier one"
    );
    b.stop().await;
    a.stop().await;
}
