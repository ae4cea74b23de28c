//! Property test of stanza handling over real sockets: a logged-in session gets random sequences of
//! stanzas built from the vocabulary the server understands — messages of every type with bodies,
//! extraParams, markers, typing, corrections, deletes and carbon hints; iqs of every namespace it
//! serves with random types, targets and payloads (roster items, privacy lists, status streaming,
//! mobile v2, bind, …); presences of every type; stream-management elements; unknown elements.
//!
//! After each sequence the session must either answer a ping or have ended with a stream error: a
//! handler that panicked or gave up shows as a bare end of stream. The server must only ever send
//! well-formed XML, and two other users must still be able to exchange a message.

use confab_testkit as common;

use std::time::Duration;

use common::xmpp::{Transport, XmppClient};
use common::TestServer;
use confab_xmpp::stream::StreamEvent;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::json;

/// Who a stanza is addressed to; the names are filled in per run (see `Names::jid`).
#[derive(Clone, Debug)]
enum Target {
    None,
    Peer,
    PeerResource,
    OwnBare,
    Nobody,
    OtherApp,
    Domain,
    Room,
    RoomNick,
    UnknownRoom,
    Garbage,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::None),
        Just(Target::Peer),
        Just(Target::PeerResource),
        Just(Target::OwnBare),
        Just(Target::Nobody),
        Just(Target::OtherApp),
        Just(Target::Domain),
        Just(Target::Room),
        Just(Target::RoomNick),
        Just(Target::UnknownRoom),
        Just(Target::Garbage),
    ]
}

/// The JIDs a run's stanzas can point at.
struct Names {
    app: i64,
    me: i64,
    peer: i64,
    dialog: String,
}

impl Names {
    fn jid(&self, t: &Target) -> Option<String> {
        let app = self.app;
        Some(match t {
            Target::None => return None,
            Target::Peer => format!("{}-{app}@localhost", self.peer),
            Target::PeerResource => format!("{}-{app}@localhost/res", self.peer),
            Target::OwnBare => format!("{}-{app}@localhost", self.me),
            Target::Nobody => format!("999999-{app}@localhost"),
            Target::OtherApp => format!("{}-{}@localhost", self.peer, app + 7),
            Target::Domain => "localhost".into(),
            Target::Room => format!("{app}_{}@muc.localhost", self.dialog),
            Target::RoomNick => format!("{app}_{}@muc.localhost/{}", self.dialog, self.me),
            Target::UnknownRoom => format!("{app}_6b02b1f7b5a07d1688000000@muc.localhost"),
            Target::Garbage => "@@not/a\\jid@".into(),
        })
    }
}

/// A stanza with its target left open: `(target, xml with a `{TO}` attribute slot)`.
type Stanza = (Target, String);

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&'\"]{0,24}".prop_map(|s| escape(&s))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

fn object_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{24}",
        Just("6b02b1f7b5a07d1688000000".to_string()),
        "[a-z0-9-]{0,12}",
    ]
}

fn message_child() -> impl Strategy<Value = String> {
    prop_oneof![
        text().prop_map(|t| format!("<body>{t}</body>")),
        (prop::bool::ANY, object_id(), text()).prop_map(|(save, d, t)| format!(
            "<extraParams xmlns='jabber:client'><save_to_history>{}</save_to_history><dialog_id>{d}</dialog_id><custom>{t}</custom><tags><0>a</0><1>b</1></tags><attachment uid='u' type='image'/></extraParams>",
            u8::from(save)
        )),
        Just("<extraParams xmlns='jabber:client'><moduleIdentifier>SystemNotifications</moduleIdentifier></extraParams>".to_string()),
        Just("<extraParams xmlns='jabber:client'><moduleIdentifier>WebRTCVideoChat</moduleIdentifier><signalType>call</signalType><sessionID>S</sessionID></extraParams>".to_string()),
        Just("<extraParams xmlns='jabber:client'/>".to_string()),
        object_id().prop_map(|id| format!("<received xmlns='urn:xmpp:chat-markers:0' id='{id}'/>")),
        object_id().prop_map(|id| format!("<displayed xmlns='urn:xmpp:chat-markers:0' id='{id}'/>")),
        Just("<markable xmlns='urn:xmpp:chat-markers:0'/>".to_string()),
        Just("<composing xmlns='http://jabber.org/protocol/chatstates'/>".to_string()),
        Just("<paused xmlns='http://jabber.org/protocol/chatstates'/>".to_string()),
        (object_id(), prop::bool::ANY).prop_map(|(id, last)| format!(
            "<replace xmlns='urn:xmpp:message-correct:0' id='{id}' last='{last}'/>"
        )),
        object_id().prop_map(|id| format!("<remove xmlns='urn:xmpp:message-delete:0' id='{id}'/>")),
        Just("<private xmlns='urn:xmpp:carbons:2'/>".to_string()),
        Just("<no-copy xmlns='urn:xmpp:hints'/>".to_string()),
        Just("<delay xmlns='urn:xmpp:delay' stamp='not a date'/>".to_string()),
        Just("<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'><body>x</body></message></forwarded></sent>".to_string()),
        Just("<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>".to_string()),
        text().prop_map(|t| format!("<unknown xmlns='urn:fuzz'>{t}</unknown>")),
    ]
}

fn message() -> impl Strategy<Value = Stanza> {
    let typ = prop_oneof![
        Just(""),
        Just(" type='chat'"),
        Just(" type='groupchat'"),
        Just(" type='headline'"),
        Just(" type='normal'"),
        Just(" type='error'"),
        Just(" type='bogus'"),
    ];
    (
        target(),
        typ,
        prop::option::of(object_id()),
        prop::collection::vec(message_child(), 0..4),
    )
        .prop_map(|(to, typ, id, children)| {
            let id = id.map(|i| format!(" id='{i}'")).unwrap_or_default();
            (
                to,
                format!("<message{{TO}}{typ}{id}>{}</message>", children.concat()),
            )
        })
}

fn privacy_item() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("type='jid' value='{PEER}'"),
            Just("type='jid' value='@@bad'"),
            Just("type='group' value='friends'"),
            Just("type='subscription' value='both'"),
            Just(""),
        ],
        prop_oneof![Just("allow"), Just("deny"), Just("maybe")],
        prop_oneof![
            Just("1"),
            Just("2"),
            Just("-3"),
            Just("x"),
            Just("99999999999")
        ],
        prop_oneof![
            Just(""),
            Just("<message/>"),
            Just("<presence-in/><presence-out/>"),
            Just("<iq/>")
        ],
    )
        .prop_map(|(what, action, order, kinds)| {
            format!("<item {what} action='{action}' order='{order}'>{kinds}</item>")
        })
}

fn iq_payload() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("<ping xmlns='urn:xmpp:ping'/>".to_string()),
        Just("<query xmlns='jabber:iq:last'/>".to_string()),
        Just("<query xmlns='http://jabber.org/protocol/disco#info'/>".to_string()),
        Just("<query xmlns='http://jabber.org/protocol/disco#items'/>".to_string()),
        Just("<query xmlns='jabber:iq:roster'/>".to_string()),
        (
            prop_oneof![Just("{PEER}"), Just("{NOBODY}"), Just("@@bad"), Just("{ME}")],
            prop_oneof![Just(""), Just(" subscription='remove'"), Just(" subscription='both'")],
            text()
        )
            .prop_map(|(jid, sub, name)| format!(
                "<query xmlns='jabber:iq:roster'><item jid='{jid}'{sub} name='{name}'><group>{name}</group></item></query>"
            )),
        Just("<query xmlns='jabber:iq:privacy'/>".to_string()),
        ("[a-z]{0,6}", prop::collection::vec(privacy_item(), 0..4)).prop_map(|(name, items)| format!(
            "<query xmlns='jabber:iq:privacy'><list name='{name}'>{}</list></query>",
            items.concat()
        )),
        "[a-z]{0,6}".prop_map(|name| format!("<query xmlns='jabber:iq:privacy'><default name='{name}'/></query>")),
        Just("<query xmlns='jabber:iq:privacy'><default/></query>".to_string()),
        "[a-z]{0,6}".prop_map(|name| format!("<query xmlns='jabber:iq:privacy'><active name='{name}'/></query>")),
        "[a-z]{0,6}".prop_map(|name| format!("<query xmlns='jabber:iq:privacy'><list name='{name}'/></query>")),
        Just("<enable xmlns='urn:xmpp:carbons:2'/>".to_string()),
        Just("<disable xmlns='urn:xmpp:carbons:2'/>".to_string()),
        Just("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>again</resource></bind>".to_string()),
        Just("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>".to_string()),
        prop_oneof![Just("true"), Just("false"), Just("bogus")].prop_map(|e| format!(
            "<mobile xmlns='http://tigase.org/protocol/mobile#v2' enable='{e}'/>"
        )),
        (
            prop_oneof![Just("{PEER}"), Just("{NOBODY}"), Just("@@bad"), Just("")],
            prop_oneof![Just("true"), Just("false"), Just("x")]
        )
            .prop_map(|(jid, e)| format!(
                "<subscribe xmlns='https://connectycube.com/protocol/status_streaming' user_jid='{jid}' enable='{e}'/>"
            )),
        Just("<vCard xmlns='vcard-temp'/>".to_string()),
        Just("<query xmlns='http://jabber.org/protocol/muc#owner'/>".to_string()),
        Just("<ping xmlns='urn:xmpp:ping'/><query xmlns='jabber:iq:last'/>".to_string()),
        text().prop_map(|t| format!("<x xmlns='urn:fuzz'>{t}</x>")),
    ]
}

fn iq() -> impl Strategy<Value = Stanza> {
    let typ = prop_oneof![
        Just(""),
        Just(" type='get'"),
        Just(" type='set'"),
        Just(" type='result'"),
        Just(" type='error'"),
        Just(" type='bogus'"),
    ];
    (
        target(),
        typ,
        prop::option::of("[a-z0-9:]{1,10}"),
        iq_payload(),
    )
        .prop_map(|(to, typ, id, payload)| {
            let id = id.map(|i| format!(" id='{i}'")).unwrap_or_default();
            (to, format!("<iq{{TO}}{typ}{id}>{payload}</iq>"))
        })
}

fn presence() -> impl Strategy<Value = Stanza> {
    let typ = prop_oneof![
        Just(""),
        Just(" type='subscribe'"),
        Just(" type='subscribed'"),
        Just(" type='unsubscribe'"),
        Just(" type='unsubscribed'"),
        Just(" type='unavailable'"),
        Just(" type='probe'"),
        Just(" type='error'"),
        Just(" type='bogus'"),
    ];
    let child = prop_oneof![
        Just("<show>away</show>".to_string()),
        Just("<show>nonsense</show>".to_string()),
        text().prop_map(|t| format!("<status>{t}</status>")),
        Just("<priority>5</priority>".to_string()),
        Just("<priority>-129x</priority>".to_string()),
        Just("<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>".to_string()),
    ];
    (target(), typ, prop::collection::vec(child, 0..3)).prop_map(|(to, typ, c)| {
        (
            to,
            format!("<presence{{TO}}{typ}>{}</presence>", c.concat()),
        )
    })
}

fn other() -> impl Strategy<Value = Stanza> {
    prop_oneof![
        Just("<enable xmlns='urn:xmpp:sm:3'/>".to_string()),
        Just("<enable xmlns='urn:xmpp:sm:3' resume='true'/>".to_string()),
        Just("<r xmlns='urn:xmpp:sm:3'/>".to_string()),
        prop_oneof![
            Just("0"),
            Just("1"),
            Just("x"),
            Just("4294967295"),
            Just("-1")
        ]
        .prop_map(|h| format!("<a xmlns='urn:xmpp:sm:3' h='{h}'/>")),
        Just("<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>".to_string()),
        Just("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".to_string()),
        Just(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"
                .to_string()
        ),
        Just("<foo xmlns='urn:fuzz'/>".to_string()),
        Just("<message xmlns='urn:wrong:ns' type='chat'><body>x</body></message>".to_string()),
    ]
    .prop_map(|xml| (Target::None, xml))
}

fn stanza() -> impl Strategy<Value = Stanza> {
    prop_oneof![4 => message(), 4 => iq(), 2 => presence(), 1 => other()]
}

fn render(names: &Names, (to, xml): &Stanza) -> String {
    let to = names
        .jid(to)
        .map(|j| format!(" to='{}'", escape(&j)))
        .unwrap_or_default();
    let jid = |t| names.jid(&t).expect("a user");
    xml.replace("{TO}", &to)
        .replace("{PEER}", &jid(Target::Peer))
        .replace("{ME}", &jid(Target::OwnBare))
        .replace("{NOBODY}", &jid(Target::Nobody))
}

/// What the session did after a sequence: answered the closing ping, or ended with a stream error.
async fn outcome(c: &mut XmppClient) -> Result<(), String> {
    // When the server has closed, the ping cannot be sent; what it wrote before is still read below.
    c.try_send("<iq type='get' id='fuzz-end' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    loop {
        match c.next_within(Duration::from_secs(10)).await {
            Some(StreamEvent::Element(e)) if e.attr("id") == Some("fuzz-end") => return Ok(()),
            Some(StreamEvent::Element(e))
                if e.local_name() == "error" && e.ns == confab_xmpp::xml::NS_STREAM =>
            {
                return Ok(())
            }
            Some(StreamEvent::Element(_)) | Some(StreamEvent::Open(_)) => continue,
            Some(StreamEvent::Close) | None => {
                return Err(format!(
                    "the session ended without a stream error or went silent; it sent: {}",
                    tail(&c.raw)
                ))
            }
        }
    }
}

fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(600);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}

#[test]
fn random_stanzas_never_break_a_session_or_the_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Every case logs alice in again: lift the per-account login rate limit.
    let ts = rt.block_on(TestServer::start_with(|c| {
        c.login_attempts_per_minute = 1_000_000
    }));
    let ((alice, alice_token), (bob, _), (carol, carol_token), (dave, dave_token)) =
        rt.block_on(async {
            (
                ts.user("alice").await,
                ts.user("bob").await,
                ts.user("carol").await,
                ts.user("dave").await,
            )
        });
    let dialog = rt.block_on(async {
        let (s, v) = ts
            .call(
                Method::POST,
                "/chat/Dialog.json",
                Some(&alice_token),
                Some(json!({"type": 2, "name": "fuzz", "occupants_ids": [bob]})),
            )
            .await;
        assert!(s.is_success(), "{v}");
        v["_id"].as_str().unwrap().to_string()
    });
    let names = Names {
        app: ts.app_id,
        me: alice,
        peer: bob,
        dialog,
    };

    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let cases = (
        prop::bool::ANY,
        prop::bool::ANY,
        prop::collection::vec(stanza(), 1..30),
    );
    let result = runner.run(&cases, |(over_ws, present, stanzas)| {
        rt.block_on(async {
            let transport = if over_ws {
                Transport::WebSocket
            } else {
                Transport::Tcp
            };
            let mut a = XmppClient::over(&ts, transport).await;
            a.login(alice, ts.app_id, &alice_token).await;
            if present {
                a.send("<presence/>").await;
            }
            for s in &stanzas {
                if !a.try_send(&render(&names, s)).await {
                    break;
                }
            }
            outcome(&mut a).await.map_err(TestCaseError::fail)?;

            // The server still serves everyone else.
            let mut c = XmppClient::over(&ts, transport).await;
            c.login(carol, ts.app_id, &carol_token).await;
            let mut d = XmppClient::over(&ts, transport).await;
            d.login(dave, ts.app_id, &dave_token).await;
            d.send("<presence/>").await;
            c.send(&format!(
                "<message to='{dave}-{}@localhost' type='chat' id='alive'><body>still here</body></message>",
                ts.app_id
            ))
            .await;
            let got = d.until(|e| e.attr("id") == Some("alive")).await;
            prop_assert_eq!(got.attr("from"), Some(c.jid.as_str()));
            Ok(())
        })
    });
    rt.block_on(ts.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
}
