//! Chaos across nodes: three senders on node C send 200 messages each to a user on node A (one
//! sender with `save_to_history=1`) while node C — the real binary — is `kill -9`ed at a random
//! moment. Every message node C acknowledged (XEP-0198 `<a h/>`) reaches the recipient exactly
//! once and in the order sent. Repeated `CONFAB_CLUSTER_CHAOS_ROUNDS` times (default 20); the
//! totals are printed. The same with the recipient's node killed instead, and with nats-server
//! restarted. Needs PostgreSQL (see `scripts/postgres.sh`) and `nats-server`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use confab_testkit as common;

use common::cluster::node_process;
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

/// A recipient with stream management on node C: reads until its connection dies, answering every
/// `<r/>` with what it has read; returns the ids of the chat messages it got.
async fn receive_until_cut(mut c: XmppClient) -> Vec<String> {
    let (mut h, mut ids) = (0u32, Vec::new());
    loop {
        match c.next_within(Duration::from_secs(30)).await {
            Some(StreamEvent::Element(e)) if e.name == "r" => {
                if !c
                    .try_send(&format!("<a xmlns='urn:xmpp:sm:3' h='{h}'/>"))
                    .await
                {
                    return ids;
                }
            }
            Some(StreamEvent::Element(e)) => {
                if matches!(e.name.as_str(), "message" | "presence" | "iq") {
                    h = h.wrapping_add(1);
                }
                if e.name == "message" && e.child_named("body").is_some() {
                    ids.extend(e.attr("id").map(str::to_string));
                }
            }
            _ => return ids,
        }
    }
}

/// The recipient's node is the one killed: three senders on node A send to a user with stream
/// management on node C, the real binary, `kill -9`ed at a random moment (half as many rounds as
/// `CONFAB_CLUSTER_CHAOS_ROUNDS`, default 10). Node A acknowledges a message only once node C said
/// the client has it, or, once C is gone, after storing it offline; the user, reconnected to node
/// A, has every acknowledged message. A message the client got but had not confirmed when C died
/// may come twice (at least once); none is lost.
#[tokio::test]
async fn acknowledged_messages_survive_the_recipients_node_killed() {
    let Some((nats, database_url, a)) = common::postgres::first_node("confab_chaos_rcpt", |c| {
        c.node_id = Some("rcpt-a".into());
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
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_confab"));
    let rounds = rounds().div_ceil(2);
    let (mut total_acked, mut total_twice) = (0, 0);
    for round in 0..rounds {
        let node = format!("rcpt-c{round}");
        let mut c = node_process(bin, dir.path(), &database_url, &url, &node).await;
        let mut r = XmppClient::tcp(c.xmpp).await;
        r.login(rcpt, a.app_id, &rt).await;
        r.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
        r.until(|e| e.name == "enabled").await;
        r.send("<presence/>").await;
        common::cluster::seen_elsewhere(&a, rcpt).await;
        let receiver = tokio::spawn(receive_until_cut(r));
        let mut tasks = Vec::new();
        for (k, (id, token)) in senders.iter().enumerate() {
            let mut client = XmppClient::tcp(a.xmpp_addr()).await;
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
        let mut got = receiver.await.unwrap();

        // The user, back on node A, gets what was stored for them.
        let mut again = XmppClient::tcp(a.xmpp_addr()).await;
        again.login(rcpt, a.app_id, &rt).await;
        again.send("<presence/>").await;
        let wanted: Vec<String> = (0..SENDERS)
            .flat_map(|k| (0..acked[k]).map(move |i| format!("r{round}-s{k}-{i:03}")))
            .collect();
        let missing = |got: &[String]| wanted.iter().filter(|w| !got.contains(w)).count();
        while missing(&got) > 0 {
            let Some(StreamEvent::Element(m)) = again.next_within(Duration::from_secs(10)).await
            else {
                // The ids say which sender (s1 saves to history) and where in its run.
                let ids: Vec<&String> = wanted.iter().filter(|w| !got.contains(w)).collect();
                panic!(
                    "round {round} (kill after {kill_after} ms): acked {acked:?}, {} missing: {ids:?}",
                    ids.len()
                );
            };
            if m.name == "message" && m.child_named("body").is_some() {
                got.extend(m.attr("id").map(str::to_string));
            }
        }
        while let Some(StreamEvent::Element(m)) =
            again.next_within(Duration::from_millis(300)).await
        {
            got.extend(
                m.attr("id")
                    .filter(|_| m.name == "message")
                    .map(str::to_string),
            );
        }
        again.close().await;
        let distinct: std::collections::HashSet<&String> = got.iter().collect();
        total_twice += got.len() - distinct.len();
        total_acked += acked.iter().sum::<usize>();
    }
    println!(
        "cluster chaos, recipient's node killed: {rounds} rounds, {total_acked} messages acknowledged, lost 0, {total_twice} received twice (unconfirmed when the node died)"
    );
    a.stop().await;
}
