//! The two byte pipes a session runs over: TCP (plain, STARTTLS, direct TLS) and WebSocket frames.
//! The session state machine is generic over [`Transport`], so both share every feature.

use std::io;

use async_trait::async_trait;
use axum::extract::ws::{Message, WebSocket};
use tokio::io::Interest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::stream::Framing;

#[async_trait]
pub trait Transport: Send + 'static {
    fn framing(&self) -> Framing;
    /// Appends received bytes to `buf`; `Ok(false)` at end of stream. Cancel-safe.
    async fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool>;
    async fn send(&mut self, xml: &str) -> io::Result<()>;
    fn is_secure(&self) -> bool;
    /// Whether `<starttls/>` can be offered now.
    fn can_starttls(&self) -> bool {
        false
    }
    async fn starttls(&mut self, _acceptor: &TlsAcceptor) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no STARTTLS here",
        ))
    }
    /// Ends the connection. With `linger`, it first reads and discards what the client still sends
    /// until the client closes too, for at most [`LINGER`] and [`LINGER_BYTES`]: closing a socket
    /// with unread input sends a TCP reset, and a reset makes the client's kernel drop a stream
    /// error the client has not read yet.
    async fn close(&mut self, linger: bool);
}

/// How long a connection that ended with a stream error waits for the client to close.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(2);
/// How much input it discards meanwhile.
pub const LINGER_BYTES: usize = 256 * 1024;

/// Reads and discards until end of stream, an error, or `LINGER_BYTES`; the caller bounds the time.
async fn discard_input(r: &mut (impl tokio::io::AsyncRead + Unpin)) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < LINGER_BYTES {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

/// RFC 6120 over TCP.
pub struct TcpTransport {
    io: Io,
}

impl TcpTransport {
    pub fn plain(s: TcpStream) -> Self {
        Self { io: Io::Plain(s) }
    }

    pub fn tls(s: TlsStream<TcpStream>) -> Self {
        Self {
            io: Io::Tls(Box::new(s)),
        }
    }
}

/// Bytes read per wake-up.
const READ_CHUNK: usize = 16 * 1024;
const TLS_READ_CHUNK: usize = 4 * 1024;

thread_local! {
    /// Plain TCP reads land here first and only the bytes received are copied to the session, so an
    /// idle connection holds no read buffer and a small stanza costs a small allocation.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// One read from a readable socket. A short read drained the socket, so readiness is cleared right
/// away (inside `try_io`): the next wait goes to epoll without first paying for a read that would
/// only say `WouldBlock`.
fn try_read_plain(s: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    SCRATCH.with_borrow_mut(|scratch| {
        let mut got = None;
        let r = s.try_io(Interest::READABLE, || {
            let n = s.try_read(scratch)?;
            buf.extend_from_slice(&scratch[..n]);
            got = Some(n);
            if n > 0 && n < scratch.len() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match (r, got) {
            (_, Some(n)) => Ok(n),
            (Err(e), None) => Err(e),
            (Ok(n), None) => Ok(n),
        }
    })
}

#[async_trait]
impl Transport for TcpTransport {
    fn framing(&self) -> Framing {
        Framing::Tcp
    }

    async fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        match &mut self.io {
            Io::Plain(s) => loop {
                s.readable().await?;
                match try_read_plain(s, buf) {
                    Ok(n) => return Ok(n > 0),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            },
            // rustls may hold decrypted bytes the socket no longer signals, so read through it.
            // A smaller reserve: an idle TLS session waits holding it.
            Io::Tls(s) => {
                buf.reserve(TLS_READ_CHUNK);
                Ok(s.read_buf(buf).await? > 0)
            }
            Io::Gone => Ok(false),
        }
    }

    async fn send(&mut self, xml: &str) -> io::Result<()> {
        match &mut self.io {
            Io::Plain(s) => s.write_all(xml.as_bytes()).await,
            Io::Tls(s) => {
                s.write_all(xml.as_bytes()).await?;
                s.flush().await
            }
            Io::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn is_secure(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    fn can_starttls(&self) -> bool {
        matches!(self.io, Io::Plain(_))
    }

    async fn starttls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        match std::mem::replace(&mut self.io, Io::Gone) {
            Io::Plain(s) => {
                let tls = acceptor.accept(s).await?;
                self.io = Io::Tls(Box::new(tls));
                Ok(())
            }
            other => {
                self.io = other;
                Err(io::Error::new(io::ErrorKind::Unsupported, "already secure"))
            }
        }
    }

    async fn close(&mut self, linger: bool) {
        let drain = async {
            match &mut self.io {
                Io::Plain(s) => {
                    let _ = s.shutdown().await;
                    if linger {
                        discard_input(s).await;
                    }
                }
                Io::Tls(s) => {
                    let _ = s.shutdown().await;
                    if linger {
                        discard_input(s).await;
                    }
                }
                Io::Gone => {}
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

/// RFC 7395 over an axum WebSocket: one text frame per element.
pub struct WsTransport {
    pub socket: WebSocket,
    pub secure: bool,
}

#[async_trait]
impl Transport for WsTransport {
    fn framing(&self) -> Framing {
        Framing::WebSocket
    }

    async fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        match self.socket.recv().await {
            None => Ok(false),
            Some(Err(e)) => Err(io::Error::other(e)),
            Some(Ok(Message::Text(t))) => {
                buf.extend_from_slice(t.as_str().as_bytes());
                Ok(true)
            }
            Some(Ok(Message::Binary(b))) => {
                buf.extend_from_slice(&b);
                Ok(true)
            }
            Some(Ok(Message::Close(_))) => Ok(false),
            // Pings are answered by the WebSocket layer; they still count as activity.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(true),
        }
    }

    async fn send(&mut self, xml: &str) -> io::Result<()> {
        self.socket
            .send(Message::Text(xml.into()))
            .await
            .map_err(io::Error::other)
    }

    fn is_secure(&self) -> bool {
        self.secure
    }

    async fn close(&mut self, linger: bool) {
        let close = async {
            let _ = self.socket.send(Message::Close(None)).await;
            // Until the client's own Close frame (the WebSocket closing handshake).
            let mut total = 0;
            while linger && total < LINGER_BYTES {
                match self.socket.recv().await {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(m)) => total += m.into_data().len(),
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, close).await;
    }
}
