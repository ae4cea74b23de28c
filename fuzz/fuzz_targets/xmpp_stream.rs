//! The XMPP stream reader and stanza parser on arbitrary bytes in arbitrary chunks.
//!
//! Input: byte 0 picks the framing (bit 0) and a small or the default stanza limit (bit 1); byte 1
//! seeds the chunk sizes; the rest is the stream. Checked:
//! - no panic, and the buffer never holds more than the limit plus one chunk;
//! - the events do not depend on how the bytes were cut (TCP segments, WebSocket frames);
//! - every element the reader yields renders to XML that parses back to the same tree, since that
//!   rendering is what the server forwards to other clients and stores.
#![no_main]

use confab_xmpp::stream::{Framing, StreamError, StreamEvent, StreamReader};
use confab_xmpp::xml::{parse_element, Element, Node, Scope};
use libfuzzer_sys::fuzz_target;

const MAX_CHUNK: usize = 64;

fn run(
    framing: Framing,
    max: usize,
    data: &[u8],
    mut cut: impl FnMut() -> usize,
) -> (Vec<StreamEvent>, Option<StreamError>) {
    let mut r = StreamReader::new(framing, max);
    let mut events = Vec::new();
    let mut rest = data;
    loop {
        let n = cut().min(rest.len());
        r.feed(&rest[..n]);
        rest = &rest[n..];
        loop {
            match r.next_event() {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
        assert!(
            r.buffered() <= max.max(1024) + MAX_CHUNK,
            "buffer over the limit"
        );
        if rest.is_empty() {
            return (events, None);
        }
    }
}

/// Adjacent text nodes merge and empty ones vanish when rendered and parsed again.
fn normalized(e: &Element) -> Element {
    let mut out = Element {
        children: Vec::new(),
        ..e.clone()
    };
    for n in &e.children {
        match n {
            Node::Element(c) => out.children.push(Node::Element(normalized(c))),
            Node::Text(t) if t.is_empty() => {}
            Node::Text(t) => match out.children.last_mut() {
                Some(Node::Text(prev)) => prev.push_str(t),
                _ => out.children.push(Node::Text(t.clone())),
            },
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let framing = if data[0] & 1 == 0 {
        Framing::Tcp
    } else {
        Framing::WebSocket
    };
    let max = if data[0] & 2 == 0 { 1024 } else { 256 * 1024 };
    let mut seed = u32::from(data[1]) | 1;
    let stream = &data[2..];

    let (whole, whole_err) = run(framing, max, stream, || usize::MAX);
    let (cut, cut_err) = run(framing, max, stream, || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (seed >> 16) as usize % MAX_CHUNK + 1
    });
    // Fed whole, a too-big element can be refused before a later syntax error is seen, and the
    // other way round; everything before the error must be the same.
    let n = whole.len().min(cut.len());
    assert_eq!(whole[..n], cut[..n]);
    if whole_err.is_none() && cut_err.is_none() {
        assert_eq!(whole, cut);
    }
    if whole_err != cut_err
        && whole_err != Some(StreamError::TooBig)
        && cut_err != Some(StreamError::TooBig)
    {
        panic!("errors differ: whole {whole_err:?}, cut {cut_err:?}");
    }

    for ev in &whole {
        if let StreamEvent::Element(el) = ev {
            let xml = el.to_xml();
            let back = parse_element(xml.as_bytes(), &Scope::client())
                .unwrap_or_else(|e| panic!("rendered element does not parse ({e:?}): {xml}"));
            assert_eq!(normalized(&back), normalized(el), "round trip of {xml}");
        }
    }
});
