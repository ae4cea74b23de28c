//! What the per-session input limits cost per stanza, without sockets: the XML stream reader with
//! the default depth/attribute bounds against the loosest ones allowed, and the stanza/byte rate
//! bookkeeping (`Throttle`) against none. The load benchmark (`bench/limits.sh`) measures whole-server
//! CPU per message, where run-to-run spread hides differences this small; this one isolates them.
//!
//! Run: `cargo bench -p confab-xmpp --bench input_limits` (`BENCH_STANZAS`, default 200,000).

use std::hint::black_box;
use std::time::{Duration, Instant};

use confab_xmpp::stream::{Framing, StreamReader};
use confab_xmpp::throttle::{InputRate, Throttle};
use confab_xmpp::xml::XmlLimits;

/// A chat message as the SDK sends it (extraParams with save_to_history and an attachment).
fn stanza(i: usize) -> String {
    format!(
        "<message xmlns='jabber:client' type='chat' to='1234-56@localhost' id='{i:024x}'>\
         <body>hello number {i}</body><markable xmlns='urn:xmpp:chat-markers:0'/>\
         <extraParams xmlns='jabber:client'><save_to_history>1</save_to_history>\
         <dialog_id>5f1e2d3c4b5a69788796a5b4</dialog_id>\
         <attachments><attachment type='image' uid='a1b2c3' name='cat.png' size='1024'/></attachments>\
         </extraParams></message>"
    )
}

/// Parses every stanza of `input` (fed in 16 KiB reads, as the session reads its socket), paying
/// the throttle per read batch when there is one; the time taken.
fn run(input: &[u8], limits: XmlLimits, throttle: Option<&mut Throttle>) -> Duration {
    let mut reader = StreamReader::with_limits(Framing::Tcp, 256 * 1024, limits);
    let mut throttle = throttle;
    let started = Instant::now();
    let mut events = 0usize;
    for chunk in input.chunks(16 * 1024) {
        if let Some(th) = throttle.as_deref_mut() {
            th.before_read(reader.buffered());
        }
        reader.feed(chunk);
        if let Some(th) = throttle.as_deref_mut() {
            th.after_read(reader.buffered());
        }
        while let Some(ev) = reader.next_event().expect("well-formed") {
            if let Some(th) = throttle.as_deref_mut() {
                th.owe(1, 0);
            }
            events += 1;
            black_box(ev);
        }
        if let Some(th) = throttle.as_deref_mut() {
            black_box(th.admit());
        }
    }
    black_box(events);
    started.elapsed()
}

fn main() {
    let n: usize = std::env::var("BENCH_STANZAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut input = String::from(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
    );
    for i in 0..n {
        input.push_str(&stanza(i));
    }
    let input = input.into_bytes();
    // Rates so high they never pause: only the bookkeeping is measured.
    let never = InputRate {
        per_sec: u32::MAX,
        burst: u32::MAX,
    };
    let mut throttle = Throttle::new(never, never).expect("limited");

    let (mut default_limits, mut loosest, mut throttled) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        default_limits.push(run(&input, XmlLimits::default(), None));
        loosest.push(run(&input, XmlLimits::STORED, None));
        throttled.push(run(&input, XmlLimits::default(), Some(&mut throttle)));
    }
    let ns_per_stanza = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_nanos() as f64 / n as f64
    };
    let (d, l, t) = (
        ns_per_stanza(&mut default_limits),
        ns_per_stanza(&mut loosest),
        ns_per_stanza(&mut throttled),
    );
    println!(
        "{n} stanzas of {} bytes, median of 7 runs each",
        input.len() / n
    );
    println!("reader, loosest XML bounds allowed     {l:8.1} ns per stanza");
    println!(
        "reader, default XML bounds             {d:8.1} ns per stanza ({:+.1} ns)",
        d - l
    );
    println!(
        "reader, default bounds + rate limits   {t:8.1} ns per stanza ({:+.1} ns)",
        t - d
    );
}
