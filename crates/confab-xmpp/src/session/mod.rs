//! The client-to-server session: one state machine for TCP and WebSocket.
//!
//! States: connected → (STARTTLS) → authenticated (SASL PLAIN) → bound (resource binding). Once bound,
//! the session is in the [`Hub`](crate::hub::Hub) and takes stanzas both from the socket and from its
//! outbound queue. Stream management (XEP-0198) counts handled stanzas; a stanza counts only after its
//! handler returned, i.e. after it was stored or handed to the recipients' queues. It also counts the
//! stanzas written to the client, so offline messages are deleted only once the client's `<a h/>`
//! confirms them (without stream management: once written). Claims on offline messages that were not
//! confirmed are released when the session ends, so they are delivered at the next login.
//!
//! Live 1:1 chat messages are durable too: what the session had queued but not written, what a
//! failed write took, what the client never acknowledged (with stream management) and what came
//! while it was closing are stored offline when it ends, unless another session of the user is
//! online (it got its own copy). Offline messages stored (or released) while a session is available
//! reach it through its queue as a `ClaimOffline` item, and it hands them out then.
//!
//! Files: this one runs the loop and routes bound stanzas; `auth` (STARTTLS, SASL, bind), `output`
//! (coalesced, time-bounded writes), `offline` (offline delivery, confirmation, what is stored at the
//! end) and `stream_management` (XEP-0198 on the session; the counters are [`crate::sm`]).

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine as _;
use confab_core::clock::Millis;
use confab_core::{AppId, ErrorKind, UserId};
use rand::RngCore;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{stream_error, stream_error_with, StanzaError};
use crate::hub::{OutKind, Outbound, SessionHandle};
use crate::jid::{bare_jid, parse_username};
use crate::sm::{Ack, LiveStanza, StreamMgmt};
use crate::stream::{Framing, StreamError, StreamEvent, StreamReader};
use crate::throttle::Throttle;
use crate::transport::Transport;
use crate::xml::{Element, NS_CLIENT, NS_FRAMING, NS_STREAM};
use crate::{iq, message, XmppServer};

mod auth;
mod offline;
mod output;
mod stream_management;

use offline::{release_offline, store_undelivered};
use output::{coalesce, next_out, write_within};

pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const NS_SM: &str = "urn:xmpp:sm:3";

/// Prefix of the ids of server-initiated pings.
const PING_ID: &str = "confab-ping-";

/// A client with stream management that leaves this many stanzas unacknowledged is not reading
/// them: its stream is closed (and the durable ones stored offline).
const MAX_UNACKED: usize = 5000;

/// What a handler wants the loop to do next.
enum Flow {
    Continue,
    /// End the stream: optional stream error condition, then the closing element.
    Close(Option<&'static str>),
}

/// Facts about the connection the session cannot learn from the stream.
pub struct ConnInfo {
    /// Names a client may put in the stream's `to` besides the configured domain (the socket's
    /// host name or address: the SDK uses the host part of its URL).
    pub host_names: Vec<String>,
    /// The client's address (password attempts are limited per address, too).
    pub peer: std::net::SocketAddr,
}

pub(crate) struct Bound {
    pub handle: Arc<SessionHandle>,
    /// Initial presence seen (offline messages are delivered then).
    pub available: bool,
    /// This session's token on the offline messages it claims.
    claim: String,
    /// Some claimed offline messages may still be unconfirmed.
    claimed: bool,
}

pub(crate) struct Session {
    pub srv: Arc<XmppServer>,
    pub framing: Framing,
    info: ConnInfo,
    reader: StreamReader,
    opened: bool,
    header_sent: bool,
    pub account: Option<(AppId, UserId)>,
    pub bound: Option<Bound>,
    /// XEP-0198 counters, once enabled.
    /// (Boxed: sessions without stream management stay small.)
    sm: Option<Box<StreamMgmt>>,
    /// PLAIN without an initial response: the next `<response/>` carries it.
    awaiting_response: bool,
    ping_seq: u64,
    /// Durable stanzas of a failed write, stored offline at the end.
    undelivered: Vec<LiveStanza>,
    /// A write failed or timed out: nothing more is written.
    broken: bool,
    /// An application-specific child for the stream error the session ends with (XEP-0198's
    /// `<handled-count-too-high/>`); boxed, since it is rare and the session lives in every task.
    error_detail: Option<Box<Element>>,
    /// Input rates, when limited (boxed: small sessions stay small).
    throttle: Option<Box<Throttle>>,
    /// Messages the XEP-0198 count waits for, with their inbound count, in order.
    unconfirmed: VecDeque<(u32, message::Unconfirmed)>,
    /// The client's `<r/>` waits until `h` reaches this count (what it had sent by then).
    ack_asked: Option<u32>,
}

/// Runs one client connection to its end.
pub async fn run<T: Transport>(srv: Arc<XmppServer>, mut t: T, info: ConnInfo) {
    let _guard = srv.session_guard();
    let framing = t.framing();
    let mut s = Session {
        reader: StreamReader::with_limits(
            framing,
            srv.config.max_stanza_bytes,
            srv.config.xml_limits,
        ),
        srv: srv.clone(),
        framing,
        info,
        opened: false,
        header_sent: false,
        account: None,
        bound: None,
        sm: None,
        awaiting_response: false,
        ping_seq: 0,
        undelivered: Vec::new(),
        broken: false,
        error_detail: None,
        throttle: Throttle::new(srv.config.stanza_rate, srv.config.byte_rate),
        unconfirmed: VecDeque::new(),
        ack_asked: None,
    };
    let mut shutdown = srv.shutdown_signal();
    let mut rx: Option<mpsc::Receiver<Outbound>> = None;
    let mut last_rx = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    // One timer for the connection's life. Traffic does not move it (a timer per stanza costs a
    // timer-wheel insert and removal); when it fires early it is pushed to the real deadline.
    let keepalive = tokio::time::sleep_until(last_rx + srv.config.ping_interval);
    tokio::pin!(keepalive);
    tracing::debug!(peer = %s.info.peer, ?framing, "xmpp connection");

    let end: Option<&'static str> = 'outer: loop {
        // Handle everything already buffered.
        loop {
            match s.reader.next_event() {
                Ok(None) => break,
                // Boxed: the handlers' futures are large and needed only while an event is handled,
                // so an idle session's task stays small.
                Ok(Some(ev)) => {
                    if let Some(th) = s.throttle.as_mut() {
                        th.owe(1, 0);
                    }
                    if let Flow::Close(e) = Box::pin(s.on_event(&mut t, ev, &mut rx)).await {
                        break 'outer e;
                    }
                    // What handling it queued for this very session (a room's reflection of the
                    // client's own message) goes out before the reply to the next stanza.
                    if let Some(first) = rx.as_mut().and_then(|q| q.try_recv().ok()) {
                        let batch = coalesce(framing, first, &mut rx);
                        if let Flow::Close(e) = Box::pin(s.write_queued(&mut t, batch)).await {
                            break 'outer e;
                        }
                    }
                }
                Err(e) => {
                    break 'outer Some(match e {
                        StreamError::NotWellFormed => "not-well-formed",
                        StreamError::TooBig | StreamError::OverLimit => "policy-violation",
                        StreamError::InvalidNamespace => "invalid-namespace",
                    })
                }
            }
        }
        // Over its input rates, the session stops reading until what it read is paid for.
        let paused = s
            .throttle
            .as_mut()
            .and_then(|th| th.admit())
            .map(|d| Box::pin(tokio::time::sleep(d)));
        // A match, not `is_none()`: a borrowed local would keep its storage in the future.
        #[allow(clippy::redundant_pattern_matching)]
        let reading = matches!(paused, None);
        if !reading {
            // The client was sending: a pause is not silence.
            last_rx = Instant::now();
        }
        let deadline = match ping_sent {
            Some(at) => at + srv.config.ping_timeout,
            None => last_rx + srv.config.ping_interval,
        };
        // A client that leaves a live message unacknowledged holds up its sender: it gets a deadline.
        if let Some(due) = s.ack_due() {
            if due < keepalive.deadline() {
                keepalive.as_mut().reset(due);
            }
        }
        let handle = s.bound.as_ref().map(|b| b.handle.clone());
        if let Some(th) = s.throttle.as_mut() {
            th.before_read(s.reader.input().len());
        }
        tokio::select! {
            r = t.recv(s.reader.input()), if reading => match r {
                Ok(true) => {
                    last_rx = Instant::now();
                    ping_sent = None;
                    if let Some(th) = s.throttle.as_mut() {
                        th.after_read(s.reader.input().len());
                    }
                }
                Ok(false) | Err(_) => break 'outer None,
            },
            _ = pause(paused) => {}
            Some(first) = next_out(&mut rx) => {
                let batch = coalesce(framing, first, &mut rx);
                if let Flow::Close(e) = s.write_queued(&mut t, batch).await {
                    break 'outer e;
                }
            }
            r = first_receipt(&mut s.unconfirmed) => {
                if let Flow::Close(e) = Box::pin(s.on_receipt(&mut t, r.is_ok())).await {
                    break 'outer e;
                }
            }
            _ = killed(handle.as_deref()) => break 'outer Some("policy-violation"),
            _ = async { let _ = shutdown.wait_for(|v| *v).await; } => break 'outer Some("system-shutdown"),
            _ = &mut keepalive => {
                if s.ack_due().is_some_and(|due| due <= Instant::now()) {
                    tracing::info!(peer = %s.info.peer, "client leaves a chat message unacknowledged");
                    break 'outer Some("connection-timeout");
                }
                if Instant::now() < deadline {
                    keepalive.as_mut().reset(deadline);
                    continue 'outer;
                }
                if ping_sent.is_some() || s.bound.is_none() {
                    break 'outer Some("connection-timeout");
                }
                s.ping_seq += 1;
                let ping = Element::new("iq", NS_CLIENT)
                    .with_attr("type", "get")
                    .with_attr("id", format!("{PING_ID}{}", s.ping_seq))
                    .with_attr("from", &srv.config.domain)
                    .with_attr("to", &s.bound.as_ref().expect("bound").handle.full_jid)
                    .with_child(Element::new("ping", iq::NS_PING));
                if !s.send_stanzas(&mut t, &ping.to_xml(), 1).await {
                    break 'outer None;
                }
                // An idle client is asked for what it still owes, too.
                if s.sm.as_ref().is_some_and(|sm| sm.unacked() > 0)
                    && !s.send(&mut t, &Element::new("r", NS_SM).to_xml()).await
                {
                    break 'outer None;
                }
                let now = Instant::now();
                ping_sent = Some(now);
                keepalive.as_mut().reset(now + srv.config.ping_timeout);
            }
        }
    };

    Box::pin(finish(&mut s, &mut t, end, rx)).await;
}

/// Ends the stream (with the stream error `end`, if any), takes the session out of the hub, and
/// stores what it could not deliver. Writes are skipped on a broken connection.
async fn finish<T: Transport>(
    s: &mut Session,
    t: &mut T,
    end: Option<&'static str>,
    rx: Option<mpsc::Receiver<Outbound>>,
) {
    if let Some(cond) = end {
        if cond != "system-shutdown" && cond != "connection-timeout" {
            tracing::info!(peer = %s.info.peer, condition = cond, "xmpp stream error");
        }
        if !s.header_sent {
            let header = s.header();
            s.send(t, &header).await;
        }
        let error = match s.error_detail.take() {
            Some(detail) => stream_error_with(cond, *detail),
            None => stream_error(cond),
        };
        s.send(t, &error).await;
    }
    if let Some(b) = s.bound.take() {
        release_offline(&s.srv, &b).await;
        // What was not delivered, oldest first. With the queue closed and the spill taken, what
        // still comes is stored by its sender; storing this before leaving the hub means that
        // whoever sees the user go offline finds these messages stored.
        let mut left =
            s.sm.take()
                .map(|mut sm| sm.take_unacked_live())
                .unwrap_or_default();
        left.append(&mut s.undelivered);
        if let Some(mut queue) = rx {
            queue.close();
            while let Ok(o) = queue.try_recv() {
                left.extend((o.kind == OutKind::Durable).then(|| LiveStanza::from(o)));
            }
        }
        let spilled = b.handle.take_spilled().into_iter();
        left.extend(spilled.map(LiveStanza::from));
        store_undelivered(&s.srv, &b.handle, left).await;
        crate::presence::session_ended(&s.srv, &b.handle).await;
        s.srv.unbind(&b.handle);
    }
    if s.header_sent || end.is_some() {
        s.send(t, &closing(s.framing)).await;
    }
    if !s.broken {
        // A client that gets a stream error may still be sending; see `Transport::close`.
        let linger = end.is_some_and(|c| c != "system-shutdown" && c != "connection-timeout");
        t.close(linger).await;
    }
}

/// Waits out a throttling pause; never ends without one. The timer is boxed: only throttled
/// sessions pay for it.
async fn pause(timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

/// Resolves when the oldest unconfirmed message is settled: `Ok` when a copy is safe, `Err` when
/// none is left.
async fn first_receipt(
    waiting: &mut VecDeque<(u32, message::Unconfirmed)>,
) -> Result<(), tokio::sync::oneshot::error::RecvError> {
    match waiting.front_mut() {
        Some((_, u)) => (&mut u.wait).await,
        None => std::future::pending().await,
    }
}

async fn killed(h: Option<&SessionHandle>) {
    match h {
        Some(h) if h.is_killed() => {}
        Some(h) => h.killed().await,
        None => std::future::pending().await,
    }
}

fn closing(framing: Framing) -> String {
    match framing {
        Framing::Tcp => "</stream:stream>".into(),
        Framing::WebSocket => Element::new("close", NS_FRAMING).to_xml(),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Session {
    fn domain(&self) -> &str {
        &self.srv.config.domain
    }

    fn header(&self) -> String {
        let id = random_hex(8);
        match self.framing {
            Framing::Tcp => format!(
                "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' id='{id}' from='{}' version='1.0' xml:lang='en'>",
                crate::xml::escape(self.domain())
            ),
            Framing::WebSocket => Element::new("open", NS_FRAMING)
                .with_attr("from", self.domain())
                .with_attr("id", id)
                .with_attr("version", "1.0")
                .with_attr("xml:lang", "en")
                .to_xml(),
        }
    }

    fn features(&self, t: &dyn TransportInfo) -> Element {
        let mut f = Element::bare("stream:features");
        f.set_attr("xmlns:stream", NS_STREAM);
        if self.account.is_none() {
            if t.can_starttls() && self.srv.tls.is_some() {
                f.push(Element::new("starttls", NS_TLS));
            }
            // PLAIN only: offering ANONYMOUS makes the SDK pick it over non-loopback ws:// (spec §1.6).
            f.push(
                Element::new("mechanisms", NS_SASL)
                    .with_child(Element::bare("mechanism").with_text("PLAIN")),
            );
        } else {
            f.push(Element::new("bind", NS_BIND));
            f.push(Element::new("session", NS_SESSION).with_child(Element::bare("optional")));
            f.push(Element::new("sm", NS_SM));
        }
        f
    }

    async fn send<T: Transport>(&mut self, t: &mut T, xml: &str) -> bool {
        self.broken = self.broken || !write_within(t, xml, self.srv.config.ping_timeout).await;
        !self.broken
    }

    async fn on_event<T: Transport>(
        &mut self,
        t: &mut T,
        ev: StreamEvent,
        rx: &mut Option<mpsc::Receiver<Outbound>>,
    ) -> Flow {
        match ev {
            StreamEvent::Open(attrs) => self.on_open(t, &attrs).await,
            StreamEvent::Close => Flow::Close(None),
            StreamEvent::Element(_) if !self.opened => Flow::Close(Some("not-well-formed")),
            StreamEvent::Element(el) => {
                if self.account.is_none() {
                    self.pre_auth(t, el).await
                } else if self.bound.is_none() {
                    self.pre_bind(t, el, rx).await
                } else {
                    self.on_bound(t, el).await
                }
            }
        }
    }

    async fn on_open<T: Transport>(&mut self, t: &mut T, attrs: &[(String, String)]) -> Flow {
        let header = self.header();
        if !self.send(t, &header).await {
            return Flow::Close(None);
        }
        self.header_sent = true;
        self.opened = true;
        let attr = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        if let Some(to) = attr("to") {
            let ok = to.eq_ignore_ascii_case(self.domain())
                || self
                    .info
                    .host_names
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(to));
            if !ok {
                return Flow::Close(Some("host-unknown"));
            }
        }
        if self.framing == Framing::WebSocket && attr("xmlns") != Some(NS_FRAMING) {
            return Flow::Close(Some("invalid-namespace"));
        }
        let features = self.features(t).to_xml();
        if !self.send(t, &features).await {
            return Flow::Close(None);
        }
        Flow::Continue
    }

    async fn on_bound<T: Transport>(&mut self, t: &mut T, el: Element) -> Flow {
        if el.ns == NS_SM {
            return self.on_sm(t, &el).await;
        }
        if el.ns != NS_CLIENT {
            return Flow::Close(Some("unsupported-stanza-type"));
        }
        let handle = self.bound.as_ref().expect("bound").handle.clone();
        let mut initial_presence = false;
        let mut unconfirmed = None;
        let replies: Vec<Element> = match el.name.as_str() {
            // Markers about group messages go to the author's user JID: 1:1 routing records them.
            "message" => match self.srv.muc.get() {
                Some(rooms) if rooms.is_for_rooms(&el) => rooms.route_message(&handle, el).await,
                _ => {
                    let want_receipt = self.sm.is_some();
                    let routed =
                        message::route_with_receipt(&self.srv, &handle, el, want_receipt).await;
                    unconfirmed = routed.unconfirmed;
                    routed.replies
                }
            },
            "iq" => {
                if el.attr("type") == Some("set") && el.has_child("bind", NS_BIND) {
                    vec![crate::error::error_reply(
                        &el,
                        &handle.full_jid,
                        StanzaError::NOT_ALLOWED,
                        None,
                    )]
                } else if is_ping_reply(&el) {
                    Vec::new()
                } else if let Some(rooms) = self.srv.muc.get().filter(|r| r.is_for_rooms(&el)) {
                    rooms.iq(&handle, el).await
                } else {
                    iq::handle(&self.srv, &handle, el).await
                }
            }
            "presence" => {
                let (replies, initial) = self.on_presence(&handle, &el).await;
                initial_presence = initial;
                replies
            }
            _ => return Flow::Close(Some("unsupported-stanza-type")),
        };
        for r in replies {
            if !self.send_stanzas(t, &r.to_xml(), 1).await {
                return Flow::Close(None);
            }
        }
        // Handled (stored or queued): now it counts for XEP-0198, once what it waits for is safe.
        if let Some(sm) = self.sm.as_mut() {
            sm.received = sm.received.wrapping_add(1);
            match unconfirmed {
                Some(u) => self.unconfirmed.push_back((sm.received, u)),
                None if self.unconfirmed.is_empty() => sm.handled = sm.received,
                None => {}
            }
        }
        if initial_presence && !self.deliver_offline(t).await {
            return Flow::Close(None);
        }
        Flow::Continue
    }

    /// Handles a presence; `true` with it when it is the initial presence.
    async fn on_presence(
        &mut self,
        handle: &Arc<SessionHandle>,
        el: &Element,
    ) -> (Vec<Element>, bool) {
        if let Some(rooms) = self.srv.muc.get().filter(|r| r.is_for_rooms(el)) {
            return (rooms.presence(handle, el).await, false);
        }
        // Directed presence to users and subscriptions.
        if el.attr("to").is_some() {
            return (
                crate::presence::directed(&self.srv, handle, el.clone()).await,
                false,
            );
        }
        // Broadcast to contacts; at initial presence, contacts' presence and pending requests.
        crate::presence::undirected(&self.srv, handle, el).await;
        let bound = self.bound.as_mut().expect("bound");
        let initial = el.attr("type").is_none() && !bound.available;
        bound.available |= initial;
        (Vec::new(), initial)
    }
}

fn is_ping_reply(el: &Element) -> bool {
    matches!(el.attr("type"), Some("result" | "error"))
        && el.attr("id").is_some_and(|id| id.starts_with(PING_ID))
}

/// What `features` needs from a transport (object-safe subset).
trait TransportInfo {
    fn can_starttls(&self) -> bool;
}

impl<T: Transport> TransportInfo for T {
    fn can_starttls(&self) -> bool {
        Transport::can_starttls(self)
    }
}

impl XmppServer {
    /// Removes a bound session from the hub and tells status watchers when the user went offline.
    pub(crate) fn unbind(&self, handle: &SessionHandle) {
        if let Some(rooms) = self.muc.get() {
            rooms.session_closed(handle);
        }
        if self.hub.unregister(handle) {
            self.cluster.online_here(handle.app, handle.user, false);
            self.hub.notify_watchers(handle.account(), iq::status_push);
        }
    }
}

#[cfg(test)]
mod tests {
    fn size_of_future<A, B, C, F: std::future::Future>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every connection keeps this future for its whole life: handlers are boxed so it stays small
    /// (it was 3.7 KiB before; 19,000 idle connections are a target).
    #[test]
    fn an_idle_session_task_is_small() {
        let size = size_of_future(super::run::<crate::transport::TcpTransport>);
        assert!(size <= 1536, "session future is {size} bytes");
    }
}
