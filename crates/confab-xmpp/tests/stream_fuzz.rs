//! Property tests of the stream reader: arbitrary bytes and XML-ish fragments, split anywhere, never
//! panic, never buffer more than the limit plus one read, and valid input always comes out whole.

use confab_xmpp::stream::{Framing, StreamEvent, StreamReader};
use proptest::prelude::*;

const MAX: usize = 2048;
const CHUNK: usize = 256;

fn drive(framing: Framing, input: &[u8], cuts: &[usize]) -> Vec<StreamEvent> {
    let mut r = StreamReader::new(framing, MAX);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    for p in points {
        for chunk in input[pos..p].chunks(CHUNK) {
            r.feed(chunk);
            loop {
                match r.next_event() {
                    Ok(Some(ev)) => out.push(ev),
                    Ok(None) => break,
                    Err(_) => return out,
                }
                assert!(r.buffered() <= MAX + CHUNK);
            }
            assert!(r.buffered() <= MAX + CHUNK, "buffered {}", r.buffered());
        }
        pos = p;
    }
    out
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<message to='a@b' type='chat'>".to_string()),
        Just("</message>".to_string()),
        Just("<body>".to_string()),
        Just("</body>".to_string()),
        Just("<0>".to_string()),
        Just("</0>".to_string()),
        Just("<x xmlns='urn:x'/>".to_string()),
        Just("<![CDATA[ <not> ]]>".to_string()),
        Just("<!-- c -->".to_string()),
        Just("<?pi x?>".to_string()),
        Just("&amp;&lt;&bogus;".to_string()),
        Just("<a b=\"'>\"".to_string()),
        Just(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
                .to_string()
        ),
        Just("</stream:stream>".to_string()),
        Just("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".to_string()),
        Just(" \n\t".to_string()),
        "[a-z<>/=\"' ]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..6000),
                                cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        drive(Framing::Tcp, &input, &cuts);
        drive(Framing::WebSocket, &input, &cuts);
    }

    #[test]
    fn xml_fragments_never_panic(parts in proptest::collection::vec(fragment(), 0..80),
                                 cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let input = parts.concat();
        drive(Framing::Tcp, input.as_bytes(), &cuts);
        drive(Framing::WebSocket, input.as_bytes(), &cuts);
    }

    #[test]
    fn valid_stanzas_survive_any_split(bodies in proptest::collection::vec("[a-zA-Z0-9 &<>\"']{0,40}", 1..10),
                                       cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut input = String::from("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
        for b in &bodies {
            let el = confab_xmpp::xml::Element::bare("message")
                .with_child(confab_xmpp::xml::Element::bare("body").with_text(b.clone()));
            input.push_str(&el.to_xml());
            input.push(' ');
        }
        let evs = drive(Framing::Tcp, input.as_bytes(), &cuts);
        prop_assert_eq!(evs.len(), bodies.len() + 1);
        for (ev, b) in evs[1..].iter().zip(&bodies) {
            match ev {
                StreamEvent::Element(e) => prop_assert_eq!(&e.child_named("body").unwrap().text(), b),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}

#[test]
fn endless_element_is_cut_off() {
    let mut r = StreamReader::new(Framing::WebSocket, MAX);
    r.feed(b"<message><body>");
    let mut failed = false;
    for _ in 0..1000 {
        r.feed(&[b'z'; CHUNK]);
        if r.next_event().is_err() {
            failed = true;
            break;
        }
        assert!(r.buffered() <= MAX + CHUNK);
    }
    assert!(failed, "an element that never ends must hit the limit");
}
