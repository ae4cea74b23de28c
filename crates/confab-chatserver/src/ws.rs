//! The WebSocket (spec §7): `ws://host/<sessionId>` (or `/ws/<sessionId>`), authenticated by
//! `Authorization: Bearer` or `?token=`. Push only: the server pings once on connect, then sends
//! binary frames `{"event", "source", "payload"}` and reads nothing but control frames.
//!
//! [`Realtime`] is the face's subscriber on the domain's bus: every stored message delivered live
//! (posted here, or over ConnectyCube REST with `send_to_chat=1`) becomes a `message` event for
//! every device session of every participant, the author included; every change of a group dialog
//! (made here or on the ConnectyCube face) becomes `addedUsers`, `removedUsers` or `chatUpdate`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State as St};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_core::chat::{DialogType, Message};
use confab_core::{DialogId, UserId};
use confab_service::bus::{Event, MessageRead, MessagesRead, Origin};
use confab_service::chat::Actor;
use confab_service::rooms::DialogChanged;
use confab_service::Subscriber;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::bearer;
use crate::chats::{message_ids, render_chats};
use crate::error::CsError;
use crate::hub::SocketSlot;
use crate::members::with_users;
use crate::messages::deleted_info;
use crate::render::{message_info, Dates};
use crate::{Face, State};

/// Largest frame accepted from a client (it has nothing to say but control frames).
const MAX_CLIENT_FRAME: usize = 4096;
/// The socket's read buffer. The library's default (128 KiB) is allocated per socket and zeroed
/// before every read attempt, which is each time the socket's task wakes to send a frame: 128 KiB
/// resident per socket and most of the fan-out's CPU (docs/benchmarks.md). A longer frame still
/// gets its full length once its header is read.
const READ_BUFFER: usize = 1024;

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /<sessionId>` and `/ws/<sessionId>`. The path segment is not trusted: the socket is the
/// authenticated session's. Without a valid token the upgrade is refused (the original upgraded
/// and then sent nothing).
pub async fn upgrade(
    St(face): St<State>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return CsError::not_found().into_response();
    };
    let Some(token) = bearer(&headers).or(q.token) else {
        return CsError::unauthorized().into_response();
    };
    let session = match face.ids.authenticate(face.app, &token).await {
        Ok(s) => s,
        Err(e) => return CsError::from(e).into_response(),
    };
    let Some(slot) = face.hub.reserve_socket() else {
        return CsError::new(StatusCode::SERVICE_UNAVAILABLE, "Too many connections.")
            .into_response();
    };
    ws.max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| run(face, session.user_id, session.id, socket, slot))
}

/// `GET /<segment>` at the root is a socket (`/<sessionId>`) or, for a name with a type
/// (`/<name>.<type>`; session ids have no dot), an uploaded file.
pub async fn upgrade_or_file(
    St(face): St<State>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    q: Query<TokenQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if segment.contains('.') && ws.is_err() {
        return match crate::uploads::serve_named(&face, &segment).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
    }
    upgrade(St(face), headers, q, ws).await
}

/// Serves one socket; `_slot` keeps its place under `chatserver_max_sockets` until it closes.
async fn run(face: State, user: UserId, session: String, socket: WebSocket, _slot: SocketSlot) {
    let (seq, mut rx) = face.hub.register(user, &session);
    let (mut sink, mut stream) = socket.split();
    let mut stop = face.stop.clone();
    if sink.send(WsMessage::Ping(Bytes::new())).await.is_ok() {
        loop {
            tokio::select! {
                frame = rx.recv() => match frame {
                    Some(f) => {
                        if sink.send(WsMessage::Binary(f)).await.is_err() {
                            break;
                        }
                    }
                    // Replaced by a newer socket of the session, or the session ended.
                    None => {
                        let _ = sink.send(WsMessage::Close(None)).await;
                        break;
                    }
                },
                incoming = stream.next() => match incoming {
                    // Nothing to read but control frames; pongs are answered for us.
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                // The guard `wait_for` returns is not `Send`: drop it inside.
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break;
                }
            }
        }
    }
    face.hub.unregister(user, seq);
}

/// Sends one event to every socket of `users`, for changes the domain's bus does not carry.
pub fn notify(face: &Face, users: &[i64], event: &str, source: &str, payload: Value) {
    if !face.hub.has_any(users) {
        return;
    }
    let frame = json!({"event": event, "source": source, "payload": payload});
    face.hub
        .send(users, Bytes::from(frame.to_string().into_bytes()));
}

/// [`notify`] for an event of one chat: those blocked in it or who blocked it hear nothing.
pub async fn notify_chat(
    face: &Face,
    dialog: confab_core::ObjectId,
    users: &[i64],
    event: &str,
    source: &str,
    payload: Value,
) -> crate::error::CsResult<()> {
    if !face.hub.has_any(users) {
        return Ok(());
    }
    let users = crate::flags::listeners(face, dialog, users).await?;
    notify(face, &users, event, source, payload);
    Ok(())
}

/// Sends a `ChatInfo` event of one chat to its listeners (see [`notify_chat`]), each with their
/// own `isArchived`: one frame for those who archived the chat, one for the others.
pub async fn notify_chat_info(
    face: &Face,
    dialog: confab_core::ObjectId,
    users: &[i64],
    event: &str,
    source: &str,
    mut payload: Value,
) -> crate::error::CsResult<()> {
    if !face.hub.has_any(users) {
        return Ok(());
    }
    let (kept, archived) = crate::flags::listeners_by_archive(face, dialog, users).await?;
    for (users, is_archived) in [(kept, false), (archived, true)] {
        if users.is_empty() {
            continue;
        }
        if let Value::Object(o) = &mut payload {
            o.insert("isArchived".into(), Value::Bool(is_archived));
        }
        notify(face, &users, event, source, payload.clone());
    }
    Ok(())
}

/// The face's subscriber on the domain's bus.
pub struct Realtime {
    pub face: Arc<Face>,
}

impl Realtime {
    /// The participants of a message's chat; `None` for dialogs that are not chats here.
    async fn participants(&self, m: &Message) -> Option<Vec<i64>> {
        Some(self.chat_of(m).await?.1)
    }

    /// The kind and participants of a message's chat.
    async fn chat_of(&self, m: &Message) -> Option<(DialogType, Vec<i64>)> {
        let view = self
            .face
            .chat
            .dialog_for(self.face.app, Actor::Admin, DialogId::from(m.dialog_id))
            .await
            .ok()?;
        match view.dialog.kind {
            DialogType::Private | DialogType::Group => {
                Some((view.dialog.kind, view.dialog.occupants_ids))
            }
            _ => None,
        }
    }

    /// A message deleted for everyone (on either face): `messageUpdate` with no text.
    async fn message_deleted(&self, m: &Message) {
        let Some((users, number, uuid)) = self.update_audience(m).await else {
            return;
        };
        let payload = deleted_info(m, number, &uuid, Dates::Apple);
        self.tell_update(m, &users, m.sender_id, Ok(payload)).await;
    }

    /// Edited or read on another face: `messageUpdate` with the message as it is now (text,
    /// `readMarks`) to the chat's participants, from `source`.
    async fn message_changed(&self, m: &Message, source: i64) {
        if let Some(users) = self.listening_participants(m).await {
            self.tell_changed(m, &users, source).await;
        }
    }

    /// `messageUpdate` of `m` as it is now, to `users`, from `source`.
    async fn tell_changed(&self, m: &Message, users: &[i64], source: i64) {
        let Ok((number, uuid)) = message_ids(&self.face, m).await else {
            return;
        };
        let payload = crate::messages::render_one(&self.face, m, number, &uuid, Dates::Apple).await;
        self.tell_update(m, users, source, payload).await;
    }

    /// Who hears a `messageUpdate` of `m` (its chat's participants, when one has a socket) and the
    /// message's number and chat uuid on this face; `None` when nobody here needs it.
    async fn update_audience(&self, m: &Message) -> Option<(Vec<i64>, i64, String)> {
        let users = self.listening_participants(m).await?;
        let (number, uuid) = message_ids(&self.face, m).await.ok()?;
        Some((users, number, uuid))
    }

    /// The participants of `m`'s chat, when one of them has a socket.
    async fn listening_participants(&self, m: &Message) -> Option<Vec<i64>> {
        if m.app_id != self.face.app.get() {
            return None;
        }
        let users = self.participants(m).await?;
        self.face.hub.has_any(&users).then_some(users)
    }

    /// Read with the ConnectyCube REST API: each message as it is now, from the reader. The
    /// messages are of one dialog, so its participants are looked up once.
    async fn messages_read(&self, r: &MessagesRead) {
        let Some(first) = r.messages.first().filter(|_| r.app == self.face.app) else {
            return;
        };
        let Some(users) = self.listening_participants(first).await else {
            return;
        };
        for m in &r.messages {
            self.tell_changed(m, &users, r.reader.get()).await;
        }
    }

    async fn tell_update(
        &self,
        m: &Message,
        users: &[i64],
        source: i64,
        payload: crate::error::CsResult<Value>,
    ) {
        let told = match payload {
            Ok(payload) => {
                let source = source.to_string();
                notify_chat(
                    &self.face,
                    m.dialog_id,
                    users,
                    "messageUpdate",
                    &source,
                    payload,
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = told {
            tracing::warn!(reason = %e.reason, "chatserver: messageUpdate event dropped");
        }
    }

    /// Read on another face: the message with its new read mark, as this face's own read sends.
    async fn message_read(&self, r: &MessageRead) {
        if r.app != self.face.app {
            return;
        }
        let id = confab_core::MessageId::from(r.message_id);
        match self.face.chat.message_for(r.app, r.reader, id).await {
            Ok((m, _, _)) => self.message_changed(&m, r.reader.get()).await,
            Err(e) => {
                tracing::debug!(kind = ?e.kind, "chatserver: read mark for an unknown message")
            }
        }
    }

    async fn message_sent(&self, m: &Message) {
        if m.app_id != self.face.app.get() {
            return;
        }
        let Some((kind, mut users)) = self.chat_of(m).await else {
            return;
        };
        // Nobody of the chat has a socket open: no ids to assign, nothing to render.
        if !self.face.hub.has_any(&users) {
            return;
        }
        // The domain's group rule, as on XMPP: nobody on either side of a privacy block with the
        // sender gets it live (a blocked 1:1 message was never stored).
        if kind == DialogType::Group {
            if let Ok(sender) = UserId::new(m.sender_id) {
                let members: Vec<UserId> =
                    users.iter().filter_map(|u| UserId::new(*u).ok()).collect();
                let blocked = self
                    .face
                    .chat
                    .privacy()
                    .blocked_in_group(self.face.app, sender, members)
                    .await;
                users.retain(|u| !blocked.iter().any(|b| b.get() == *u));
            }
        }
        // Nor those blocked in the chat or who blocked it.
        let ids = match crate::flags::listeners(&self.face, m.dialog_id, &users).await {
            Ok(listening) => {
                users = listening;
                message_ids(&self.face, m).await
            }
            Err(e) => Err(e),
        };
        let (number, uuid) = match ids {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(reason = %e.reason, "chatserver: message event dropped");
                return;
            }
        };
        let frame = json!({
            "event": "message",
            "source": m.sender_id.to_string(),
            "payload": message_info(m, number, &uuid, Dates::Apple),
        });
        self.face
            .hub
            .send(&users, Bytes::from(frame.to_string().into_bytes()));
    }
}

impl Realtime {
    /// A group's membership or details changed (on either face): `addedUsers` to everyone in it
    /// now, `removedUsers` to those left (the removed are gone already), else `chatUpdate`; deleted
    /// for everyone: `chatDeleted` to those who were in it.
    async fn dialog_changed(&self, c: &DialogChanged) {
        if c.app != self.face.app.get() {
            return;
        }
        if c.deleted {
            // Deleted for everyone, on either face: its former participants hear `chatDeleted`.
            let source = c
                .actor
                .map_or_else(|| "system".to_string(), |a| a.to_string());
            let told = notify_chat(
                &self.face,
                c.dialog_id,
                &c.removed,
                "chatDeleted",
                &source,
                Value::Null,
            )
            .await;
            if let Err(e) = told {
                tracing::warn!(reason = %e.reason, "chatserver: chatDeleted event dropped");
            }
            return;
        }
        let Ok(view) = self
            .face
            .chat
            .dialog_for(self.face.app, Actor::Admin, DialogId::from(c.dialog_id))
            .await
        else {
            return;
        };
        if view.dialog.kind != DialogType::Group {
            return;
        }
        let users = view.dialog.occupants_ids.clone();
        if !self.face.hub.has_any(&users) {
            return;
        }
        let source = c
            .actor
            .map_or_else(|| "system".to_string(), |a| a.to_string());
        let uuid = match self.face.ids.chat_uuid(self.face.app, c.dialog_id).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "chatserver: dialog event dropped");
                return;
            }
        };
        let mut events = Vec::new();
        if !c.added.is_empty() {
            events.push(("addedUsers", Some(c.added.as_slice())));
        }
        if !c.removed.is_empty() {
            events.push(("removedUsers", Some(c.removed.as_slice())));
        }
        if events.is_empty() {
            events.push(("chatUpdate", None));
        }
        for (event, ids) in events {
            let chat = (uuid.clone(), view.clone());
            let payload = match ids {
                Some(ids) => with_users(&self.face, chat, event, ids, Dates::Apple).await,
                None => render_chats(&self.face, &[chat], false, Dates::Apple)
                    .await
                    .map(|mut v| v.pop().unwrap_or(Value::Null)),
            };
            let Ok(payload) = payload else {
                continue;
            };
            let face = &self.face;
            let told = notify_chat_info(face, c.dialog_id, &users, event, &source, payload).await;
            if let Err(e) = told {
                tracing::warn!(reason = %e.reason, "chatserver: dialog event dropped");
                return;
            }
        }
    }
}

#[async_trait]
impl Subscriber for Realtime {
    async fn on_event(&self, event: &Event) {
        match event {
            // Sent over ConnectyCube REST, or stored by the XMPP face while it delivered it.
            Event::MessageSent(m) | Event::MessageRecorded(m) => self.message_sent(m).await,
            Event::MessageDeleted(m) => self.message_deleted(m).await,
            Event::MessageEdited(m, origin) if *origin != Origin::ChatServer => {
                self.message_changed(m, m.sender_id).await
            }
            Event::MessageRead(r) if r.origin != Origin::ChatServer => self.message_read(r).await,
            Event::MessagesReadOverRest(r) => self.messages_read(r).await,
            Event::DialogChanged(c) => self.dialog_changed(c).await,
            _ => {}
        }
    }
}
