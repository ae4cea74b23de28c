//! A scripted XMPP test client over TCP (optionally STARTTLS) or WebSocket (subprotocol `xmpp`).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use confab_xmpp::stream::{Framing, StreamEvent, StreamReader};
use confab_xmpp::xml::Element;
use futures_util::{SinkExt, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);

enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Ws(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
    Gone,
}

/// Which of the server's two XMPP transports a test client uses (see `on_both_transports!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    WebSocket,
}

pub struct XmppClient {
    conn: Conn,
    reader: StreamReader,
    pub framing: Framing,
    /// Everything received, as text, for assertions on the raw wire format.
    pub raw: String,
    pub jid: String,
    pub closed: bool,
}

/// Accepts the server's self-signed certificate (tests only).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

pub fn plain_b64(user: &str, secret: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{secret}"))
}

impl XmppClient {
    /// A client connected to `ts` over `transport`, not yet logged in.
    pub async fn over(ts: &super::TestServer, transport: Transport) -> Self {
        match transport {
            Transport::Tcp => Self::tcp(ts.xmpp_addr()).await,
            Transport::WebSocket => Self::ws(ts.http_addr()).await,
        }
    }

    pub async fn tcp(addr: std::net::SocketAddr) -> Self {
        let s = TcpStream::connect(addr).await.unwrap();
        // As real clients do: without it, Nagle's algorithm holds a second small write until the
        // server's delayed ACK (~40 ms), which only slows the tests down.
        s.set_nodelay(true).unwrap();
        Self::new(Conn::Tcp(s), Framing::Tcp)
    }

    /// A TCP client whose socket receive buffer is tiny, so what the server writes waits in the
    /// server's send queue until this client reads.
    pub async fn tcp_small_receive_buffer(addr: std::net::SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        let s = socket.connect(addr).await.unwrap();
        Self::new(Conn::Tcp(s), Framing::Tcp)
    }

    pub async fn tls_direct(addr: std::net::SocketAddr) -> Self {
        let s = TcpStream::connect(addr).await.unwrap();
        let tls = tls_connector()
            .connect(ServerName::try_from("localhost").unwrap(), s)
            .await
            .unwrap();
        Self::new(Conn::Tls(Box::new(tls)), Framing::Tcp)
    }

    pub async fn ws(http_addr: std::net::SocketAddr) -> Self {
        let mut req = format!("ws://{http_addr}/ws")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "xmpp".parse().unwrap());
        let (ws, resp) = tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .unwrap();
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("xmpp"),
            "server must select the xmpp subprotocol"
        );
        Self::new(Conn::Ws(Box::new(ws)), Framing::WebSocket)
    }

    fn new(conn: Conn, framing: Framing) -> Self {
        Self {
            conn,
            reader: StreamReader::new(framing, 4 * 1024 * 1024),
            framing,
            raw: String::new(),
            jid: String::new(),
            closed: false,
        }
    }

    pub async fn send(&mut self, xml: &str) {
        match &mut self.conn {
            Conn::Tcp(s) => s.write_all(xml.as_bytes()).await.unwrap(),
            Conn::Tls(s) => {
                s.write_all(xml.as_bytes()).await.unwrap();
                s.flush().await.unwrap();
            }
            Conn::Ws(ws) => ws.send(Message::text(xml)).await.unwrap(),
            Conn::Gone => panic!("connection gone"),
        }
    }

    /// Like `send`, but reports a connection the server has closed instead of panicking.
    pub async fn try_send(&mut self, xml: &str) -> bool {
        match &mut self.conn {
            Conn::Tcp(s) => s.write_all(xml.as_bytes()).await.is_ok(),
            Conn::Tls(s) => s.write_all(xml.as_bytes()).await.is_ok() && s.flush().await.is_ok(),
            Conn::Ws(ws) => ws.send(Message::text(xml)).await.is_ok(),
            Conn::Gone => false,
        }
    }

    /// Sends raw bytes (TCP only) — for malformed input.
    pub async fn send_bytes(&mut self, b: &[u8]) {
        match &mut self.conn {
            Conn::Tcp(s) => s.write_all(b).await.unwrap(),
            Conn::Tls(s) => {
                s.write_all(b).await.unwrap();
                s.flush().await.unwrap();
            }
            Conn::Ws(ws) => ws
                .send(Message::text(String::from_utf8_lossy(b).into_owned()))
                .await
                .unwrap(),
            Conn::Gone => panic!("connection gone"),
        }
    }

    async fn read_more(&mut self) -> bool {
        let mut buf = vec![0u8; 16384];
        let data: Vec<u8> = match &mut self.conn {
            Conn::Tcp(s) => {
                let n = s.read(&mut buf).await.unwrap_or(0);
                buf[..n].to_vec()
            }
            Conn::Tls(s) => {
                let n = s.read(&mut buf).await.unwrap_or(0);
                buf[..n].to_vec()
            }
            Conn::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => break t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => break b.to_vec(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Vec::new(),
                    Some(Ok(_)) => continue,
                }
            },
            Conn::Gone => Vec::new(),
        };
        if data.is_empty() {
            self.closed = true;
            return false;
        }
        self.raw.push_str(&String::from_utf8_lossy(&data));
        self.reader.feed(&data);
        true
    }

    /// The next stream event, or `None` if the connection ends or `dur` passes.
    pub async fn next_within(&mut self, dur: Duration) -> Option<StreamEvent> {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            if let Some(ev) = self.reader.next_event().expect("server sent bad XML") {
                return Some(ev);
            }
            if self.closed {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.read_more()).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(_) => return None,
            }
        }
    }

    pub async fn next(&mut self) -> StreamEvent {
        self.next_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("nothing received; raw so far: {}", self.raw))
    }

    pub async fn element(&mut self) -> Element {
        match self.next().await {
            StreamEvent::Element(e) => e,
            other => panic!("expected an element, got {other:?}"),
        }
    }

    /// Skips elements until one matches.
    pub async fn until(&mut self, pred: impl Fn(&Element) -> bool) -> Element {
        loop {
            let e = self.element().await;
            if pred(&e) {
                return e;
            }
        }
    }

    /// Enables XEP-0198 stream management; the stanza counts start now.
    pub async fn enable_sm(&mut self) {
        self.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
        self.until(|e| e.is("enabled", "urn:xmpp:sm:3")).await;
    }

    /// A ping round trip; returns how many stanzas came meanwhile, the reply included (what an
    /// `<a h/>` must count of them).
    pub async fn sync_counting(&mut self) -> u32 {
        self.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
            .await;
        let mut n = 0;
        loop {
            let e = self.element().await;
            n += u32::from(matches!(e.name.as_str(), "message" | "presence" | "iq"));
            if e.attr("id") == Some("sync") {
                return n;
            }
        }
    }

    /// The `h` of the next XEP-0198 `<a/>` within `dur`, if one comes (other elements are skipped).
    pub async fn sm_ack_within(&mut self, dur: Duration) -> Option<u32> {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let StreamEvent::Element(e) = self.next_within(left).await? else {
                continue;
            };
            if e.is("a", "urn:xmpp:sm:3") {
                return e.attr("h").and_then(|h| h.parse().ok());
            }
        }
    }

    /// Asserts that nothing (other than whitespace) arrives for `dur`.
    pub async fn nothing_for(&mut self, dur: Duration) {
        if let Some(ev) = self.next_within(dur).await {
            panic!("expected silence, got {ev:?}");
        }
    }

    /// Asserts that no `<message>` arrives for `dur` (presence and the like may).
    pub async fn no_message_for(&mut self, dur: Duration) {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                None => return,
                Some(StreamEvent::Element(e)) if e.name == "message" => {
                    panic!("expected no message, got {e:?}")
                }
                Some(_) => {}
            }
        }
    }

    pub fn open_xml(&self, to: &str) -> String {
        match self.framing {
            Framing::Tcp => format!("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>"),
            Framing::WebSocket => format!("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{to}' version='1.0'/>"),
        }
    }

    /// Opens (or restarts) the stream and returns the features.
    pub async fn open(&mut self, to: &str) -> Element {
        let x = self.open_xml(to);
        self.send(&x).await;
        match self.next().await {
            StreamEvent::Open(_) => {}
            other => panic!("expected stream open, got {other:?}"),
        }
        let f = self.element().await;
        assert_eq!(f.local_name(), "features", "{f:?}");
        f
    }

    pub async fn starttls(&mut self) {
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await;
        let p = self.element().await;
        assert_eq!(p.name, "proceed");
        let Conn::Tcp(s) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            panic!("STARTTLS on a non-plain connection")
        };
        let tls = tls_connector()
            .connect(ServerName::try_from("localhost").unwrap(), s)
            .await
            .unwrap();
        self.conn = Conn::Tls(Box::new(tls));
        self.reader.reset();
    }

    /// SASL PLAIN; `Ok` on success, else the failure condition.
    pub async fn auth(&mut self, username: &str, secret: &str) -> Result<(), String> {
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
            plain_b64(username, secret)
        ))
        .await;
        let r = self.element().await;
        match r.local_name() {
            "success" => {
                self.reader.reset();
                Ok(())
            }
            "failure" => Err(r
                .elements()
                .next()
                .map(|e| e.name.clone())
                .unwrap_or_default()),
            other => panic!("unexpected SASL answer {other}"),
        }
    }

    pub async fn bind(&mut self) -> String {
        self.send("<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>x</resource></bind></iq>").await;
        let r = self.until(|e| e.attr("id") == Some("bind1")).await;
        assert_eq!(r.attr("type"), Some("result"), "{}", r.to_xml());
        let jid = r
            .child_named("bind")
            .and_then(|b| b.child_named("jid"))
            .unwrap()
            .text();
        self.jid = jid.clone();
        jid
    }

    /// Full login: open, (STARTTLS,) PLAIN, restart, bind. Returns the full JID.
    pub async fn login(&mut self, user_id: i64, app_id: i64, secret: &str) -> String {
        self.open("localhost").await;
        self.auth(&format!("{user_id}-{app_id}"), secret)
            .await
            .expect("auth");
        let f = self.open("localhost").await;
        assert!(f.child_named("bind").is_some());
        self.bind().await
    }

    /// Expects `<stream:error>` with `condition`, then the stream's end.
    pub async fn expect_stream_error(&mut self, condition: &str) {
        let e = self.until(|e| e.local_name() == "error").await;
        assert_eq!(e.ns, confab_xmpp::xml::NS_STREAM);
        assert_eq!(
            e.elements().next().map(|c| c.name.clone()).as_deref(),
            Some(condition),
            "{}",
            e.to_xml()
        );
        // Then a close (or the connection just ends).
        match self.next_within(WAIT).await {
            None | Some(StreamEvent::Close) => {}
            Some(other) => panic!("expected end of stream, got {other:?}"),
        }
    }

    pub async fn close(&mut self) {
        let c = match self.framing {
            Framing::Tcp => "</stream:stream>".to_string(),
            Framing::WebSocket => {
                "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".to_string()
            }
        };
        self.send(&c).await;
        loop {
            match self.next_within(WAIT).await {
                None | Some(StreamEvent::Close) => break,
                Some(_) => {}
            }
        }
    }
}
