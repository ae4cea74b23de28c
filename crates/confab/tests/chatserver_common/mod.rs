//! What the ChatServer face's tests share: the real server with the face on, a JSON client for
//! it, and a WebSocket client reading its binary frames.
#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use confab_testkit::TestServer;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub struct Cs {
    pub ts: TestServer,
    pub base: String,
}

/// A registered user: id, the token of their first device session, and that session's id.
#[derive(Clone, Debug)]
pub struct CsUser {
    pub id: i64,
    pub username: String,
    pub token: String,
    pub session: String,
}

pub fn device(n: u8) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-0000000000{n:02}"),
        "name": "Test device",
        "model": "Model",
        "transport": "none",
    })
}

pub fn local_id(user: i64) -> String {
    format!("{user}+E621E1F8-C36C-495A-93FC-0C247A3E6E5F")
}

impl Cs {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut confab::Config)) -> Self {
        let ts = TestServer::start_chatserver_with(tweak).await;
        let base = ts.chatserver_base.clone().expect("face on");
        Self { ts, base }
    }

    /// A request with an optional Bearer token and JSON body; the body read as JSON (or as a
    /// string when it is not JSON, `Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .ts
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    /// A raw body (for malformed JSON).
    /// The id of the first dialog `GET /chat/Dialog.json<query>` lists for a ConnectyCube
    /// session `token` (the other face's view of a chat).
    pub async fn first_dialog(&self, token: &str, query: &str) -> String {
        let path = format!("/chat/Dialog.json{query}");
        let (s, v) = self.ts.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["items"][0]["_id"].as_str().unwrap().to_string()
    }

    /// The status a body-less request with `token` is answered with.
    pub async fn status(&self, method: Method, path: &str, token: &str) -> StatusCode {
        self.call(method, path, Some(token), None).await.0
    }

    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &'static str,
    ) -> (StatusCode, Value) {
        let mut req = self
            .ts
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn register(&self, username: &str) -> CsUser {
        let (s, v) = self
            .call(
                Method::POST,
                "/users",
                None,
                Some(
                    json!({"name": "Test User", "username": username, "password": "password1",
                            "deviceInfo": device(1)}),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        CsUser {
            id: v["info"]["id"].as_i64().unwrap(),
            username: username.to_lowercase(),
            token: v["deviceSessions"][0]["accessToken"]
                .as_str()
                .unwrap()
                .into(),
            session: v["deviceSessions"][0]["id"].as_str().unwrap().into(),
        }
    }

    /// `POST /users/login` with Basic auth and a bare `DeviceInfo`.
    pub async fn login(&self, username: &str, password: &str, body: Value) -> (StatusCode, Value) {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let resp = self
            .ts
            .client
            .post(format!("{}/users/login", self.base))
            .header("authorization", format!("Basic {basic}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(resp).await
    }

    /// A second device session of `user`: `(token, session id)`.
    pub async fn second_session(&self, user: &CsUser) -> (String, String) {
        let (s, v) = self.login(&user.username, "password1", device(2)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let sessions = v["deviceSessions"].as_array().unwrap();
        let mine = sessions
            .iter()
            .find(|d| !d["accessToken"].as_str().unwrap().is_empty())
            .unwrap();
        (
            mine["accessToken"].as_str().unwrap().into(),
            mine["id"].as_str().unwrap().into(),
        )
    }

    /// `POST /chats`; the created (or found) chat.
    pub async fn chat(&self, token: &str, participants: &[i64], personal: Option<bool>) -> Value {
        let mut body = json!({"participants": participants});
        if let Some(p) = personal {
            body["isPersonal"] = json!(p);
        }
        let (s, v) = self
            .call(Method::POST, "/chats", Some(token), Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Posts `text` as `user`; the `MessageInfo`.
    pub async fn post(&self, user: &CsUser, chat: &str, text: &str) -> Value {
        let (s, v) = self
            .call(
                Method::POST,
                &format!("/chats/{chat}/messages"),
                Some(&user.token),
                Some(json!({"localId": local_id(user.id), "text": text})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Opens the WebSocket of a session (`Authorization: Bearer`) at `path` and waits for the
    /// server's ping.
    pub async fn socket(&self, token: &str, path: &str) -> Socket {
        let url = format!("ws://{}{}", self.ts.chatserver_addr(), path);
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        Socket::open(req).await
    }
}

pub struct Socket {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Socket {
    pub async fn open(req: tokio_tungstenite::tungstenite::handshake::client::Request) -> Self {
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        // The server pings first.
        let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a ping")
            .unwrap()
            .unwrap();
        assert!(matches!(first, WsMessage::Ping(_)), "{first:?}");
        Self { ws }
    }

    /// The next binary frame, parsed; panics after 5 s.
    pub async fn frame(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .unwrap();
            match m {
                WsMessage::Binary(b) => return serde_json::from_slice(&b).unwrap(),
                WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// The server closes the socket within 5 s.
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(WsMessage::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Nothing arrives within `ms`.
    pub async fn quiet(&mut self, ms: u64) {
        match tokio::time::timeout(Duration::from_millis(ms), self.ws.next()).await {
            Err(_) => {}
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => {}
            Ok(other) => panic!("expected nothing, got {other:?}"),
        }
    }
}

pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

/// An error answer: `{"error": true, "reason": reason}` with `status`.
pub fn assert_error(got: (StatusCode, Value), status: StatusCode, reason: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1, json!({"error": true, "reason": reason}));
}

/// A fresh UUID-shaped id for pictures (upper case, as the face writes them).
pub fn uuid(n: u32) -> String {
    format!("E621E1F8-C36C-495A-93FC-{n:012X}")
}

impl Cs {
    /// `POST /uploads` with a body, `File-Name` and `Content-Type` (each optional).
    pub async fn upload(
        &self,
        token: Option<&str>,
        name: Option<&str>,
        kind: Option<&str>,
        body: reqwest::Body,
    ) -> (StatusCode, Value) {
        let mut req = self
            .ts
            .client
            .post(format!("{}/uploads", self.base))
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(n) = name {
            req = req.header("File-Name", n);
        }
        if let Some(k) = kind {
            req = req.header("content-type", k);
        }
        read(req.send().await.unwrap()).await
    }

    /// Uploads a picture's file and preview (`<id>.png`, `<id>-preview.png`) as `token`'s user.
    pub async fn upload_picture(&self, token: &str, id: &str) {
        for name in [id.to_string(), format!("{id}-preview")] {
            let (s, v) = self
                .upload(Some(token), Some(&name), Some("png"), "image".into())
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }

    /// The status `GET /<id>.png` and `GET /<id>-preview.png` answer, each.
    pub async fn picture_files(&self, id: &str) -> [StatusCode; 2] {
        [
            self.fetch_file(&format!("/{id}.png")).await.0,
            self.fetch_file(&format!("/{id}-preview.png")).await.0,
        ]
    }

    /// `GET <path>`'s status and bytes.
    pub async fn fetch_file(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let resp = self
            .ts
            .client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.bytes().await.unwrap().to_vec())
    }
}
