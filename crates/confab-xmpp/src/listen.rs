//! Accept loops for XMPP over TCP (plain + STARTTLS, or direct TLS) and the `/ws` WebSocket route.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::conn_limit::{ConnSlot, Refusal};
use crate::error::stream_error_with;
use crate::session::{self, ConnInfo};
use crate::transport::{TcpTransport, Transport, WsTransport, LINGER};
use crate::xml::{Element, NS_CLIENT, NS_STREAM, NS_STREAMS};
use crate::XmppServer;

/// Names the socket address may be called by in a stream `to`.
fn names_for(addr: &SocketAddr) -> Vec<String> {
    let ip = addr.ip();
    let mut v = vec![ip.to_string()];
    if ip.is_loopback() {
        v.push("localhost".into());
    }
    if ip.is_ipv6() {
        v.push(format!("[{ip}]"));
        // COMPAT: connectycube JS SDK 6.1.2 `getDomain()` turns `ws://[::1]:port` into "[".
        v.push("[".into());
    }
    v
}

/// Serves XMPP over TCP until shutdown. With `direct_tls`, TLS starts at once (XEP-0368 style).
pub async fn serve_tcp(srv: Arc<XmppServer>, listener: TcpListener, direct_tls: bool) {
    let mut stop = srv.shutdown_signal();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    let srv = srv.clone();
                    tokio::spawn(async move { accept_tcp(srv, sock, peer, direct_tls).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "xmpp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
    }
}

async fn accept_tcp(srv: Arc<XmppServer>, sock: TcpStream, peer: SocketAddr, direct_tls: bool) {
    // The socket and the address are moved, never borrowed, here: a borrowed local keeps its
    // storage in this future, which every connection's task holds for its whole life.
    let Some((sock, info, _slot)) = admit(&srv, sock, peer, direct_tls) else {
        return;
    };
    let transport = if direct_tls {
        // Boxed: the handshake state is large and would otherwise stay in every connection's task.
        match Box::pin(tls_handshake(&srv, sock, peer)).await {
            Some(t) => t,
            None => return,
        }
    } else {
        TcpTransport::plain(sock)
    };
    session::run(srv, transport, info).await;
}

/// A place under the connection caps and the facts about the connection; `None` when refused
/// (the refusal is sent by a task of its own).
fn admit(
    srv: &Arc<XmppServer>,
    sock: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
) -> Option<(TcpStream, ConnInfo, ConnSlot)> {
    let slot = match srv.connections.acquire(Some(peer.ip())) {
        Ok(slot) => slot,
        Err(why) => {
            tracing::info!(peer = %peer, reason = ?why, "xmpp connection refused");
            // Direct TLS would need a handshake first: the connection is just closed.
            if !direct_tls {
                tokio::spawn(refuse_tcp(srv.clone(), sock, why));
            }
            return None;
        }
    };
    let _ = sock.set_nodelay(true);
    let host_names = sock.local_addr().map(|a| names_for(&a)).unwrap_or_default();
    Some((sock, ConnInfo { host_names, peer }, slot))
}

/// Opens a stream only to end it with the refusal's stream error and text (RFC 6120 §4.9.1.1 lets
/// an error come before the client's header), then closes.
async fn refuse_tcp(srv: Arc<XmppServer>, sock: TcpStream, why: Refusal) {
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' from='{}' version='1.0'>",
        crate::xml::escape(&srv.config.domain)
    );
    let text = Element::new("text", NS_STREAMS).with_text(why.text());
    let xml = format!(
        "{header}{}</stream:stream>",
        stream_error_with(why.condition(), text)
    );
    let mut t = TcpTransport::plain(sock);
    if tokio::time::timeout(LINGER, t.send(&xml)).await.is_ok() {
        t.close(true).await;
    }
}

async fn tls_handshake(
    srv: &XmppServer,
    sock: TcpStream,
    peer: SocketAddr,
) -> Option<TcpTransport> {
    let acceptor = srv.tls.clone()?;
    match tokio::time::timeout(srv.config.ping_timeout, acceptor.accept(sock)).await {
        Ok(Ok(tls)) => Some(TcpTransport::tls(tls)),
        Ok(Err(e)) => {
            tracing::info!(peer = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}

/// The RFC 7395 endpoint, to merge into the HTTP router.
pub fn ws_routes(srv: Arc<XmppServer>) -> Router {
    Router::new().route("/ws", get(ws_upgrade)).with_state(srv)
}

/// A WebSocket's read buffer: most stanzas fit, a longer frame gets its full length once its
/// header is read. The library's default (128 KiB) is allocated per connection and zeroed before
/// every read attempt.
const WS_READ_BUFFER: usize = 4096;

/// GET /ws — XMPP over WebSocket, subprotocol `xmpp`. Over a connection cap, `503` with the
/// REST error shape and no upgrade.
async fn ws_upgrade(
    State(srv): State<Arc<XmppServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let slot = match srv.connections.acquire(Some(peer.ip())) {
        Ok(slot) => slot,
        Err(why) => {
            tracing::info!(peer = %peer, reason = ?why, "xmpp websocket refused");
            let body = json!({ "errors": { "base": [why.text()] } });
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        }
    };
    let mut host_names = Vec::new();
    if let Some(host) = headers.get("host").and_then(|h| h.to_str().ok()) {
        let name = if host.starts_with('[') {
            host.split_once(']')
                .map(|(h, _)| format!("{h}]"))
                .unwrap_or_default()
        } else {
            host.split(':').next().unwrap_or("").to_string()
        };
        if !name.is_empty() {
            if name.starts_with('[') {
                host_names.push(name.trim_matches(|c| c == '[' || c == ']').to_string());
                // COMPAT: connectycube JS SDK 6.1.2 `getDomain()` turns `ws://[::1]:port` into "[".
                host_names.push("[".into());
            }
            host_names.push(name);
        }
    }
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let limit = srv.config.max_stanza_bytes + 4096;
    // The SDK (ws package) aborts the handshake unless the server picks the `xmpp` subprotocol.
    ws.protocols(["xmpp"])
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(WS_READ_BUFFER)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let info = ConnInfo { host_names, peer };
            session::run(srv, WsTransport { socket, secure }, info).await
        })
}

#[cfg(test)]
mod tests {
    fn size_of_future<A, B, C, D, F: std::future::Future>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The task of every TCP connection holds this future for the connection's whole life.
    #[test]
    fn a_tcp_connection_task_is_small() {
        let size = size_of_future(super::accept_tcp);
        assert!(size <= 1536, "accept_tcp future is {size} bytes");
    }
}
