//! What tests and benches share: the real server in-process on port 0 with a temporary database
//! ([`TestServer`]), a small HTTP client on it, a scripted XMPP client ([`xmpp::XmppClient`]) and a
//! private NATS server for tests of several nodes ([`nats::NatsServer`]), a fresh PostgreSQL
//! database ([`postgres::fresh_database_url`]) and the real binary as a child process
//! ([`process::ConfabProcess`]).

pub mod cluster;
pub mod db;
pub mod nats;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod xmpp;

/// Runs each named `async fn(Transport)` test twice, as `over_tcp::<name>` and
/// `over_websocket::<name>`: one session state machine serves both transports, and the tests prove it.
#[macro_export]
macro_rules! on_both_transports {
    ($($name:ident),+ $(,)?) => {
        mod over_tcp {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::xmpp::Transport::Tcp).await
            })+
        }
        mod over_websocket {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::xmpp::Transport::WebSocket).await
            })+
        }
    };
}

use confab::{Config, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub struct TestServer {
    pub server: Option<Server>,
    pub config: Config,
    pub base: String,
    pub app_id: i64,
    pub auth_key: String,
    pub api_key: String,
    pub client: reqwest::Client,
    /// `http://<addr>` of the ChatServer face, when it runs.
    pub chatserver_base: Option<String>,
    /// The data directory, owned by the first node that uses it.
    _dir: Option<tempfile::TempDir>,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        http_addr: "127.0.0.1:0".into(),
        xmpp_addr: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

/// With `CONFAB_TEST_BACKEND=postgres` the test servers store everything in a fresh PostgreSQL
/// database (see [`postgres::fresh_database_url`]) instead of the embedded one, so the same tests
/// prove both backends (`scripts/test.sh` runs a set of them this way).
async fn on_postgres_when_asked(config: &mut Config) {
    if std::env::var("CONFAB_TEST_BACKEND").as_deref() == Ok("postgres") {
        config.database_url = postgres::fresh_database_url("confab_suite").await;
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        on_postgres_when_asked(&mut config).await;
        tweak(&mut config);
        let creds = confab::create_app(&config, "test").await.unwrap();
        Self::running(dir, config, creds).await
    }

    /// Starts the server on `config`, whose data directory `dir` holds the app `creds`.
    async fn running(
        dir: tempfile::TempDir,
        config: Config,
        creds: confab_core::model::AppCredentials,
    ) -> Self {
        let server = Server::start(config.clone()).await.unwrap();
        Self {
            chatserver_base: server.chatserver_addr.map(|a| format!("http://{a}")),
            base: format!("http://{}", server.http_addr),
            server: Some(server),
            config,
            app_id: creds.app.id.get(),
            auth_key: creds.app.auth_key,
            api_key: creds.api_key,
            client: reqwest::Client::new(),
            _dir: Some(dir),
        }
    }

    /// The server with the ChatServer face on a free port, serving the test app's users.
    pub async fn start_chatserver() -> Self {
        Self::start_chatserver_with(|_| {}).await
    }

    /// As [`start_chatserver`](Self::start_chatserver), with more configuration.
    pub async fn start_chatserver_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        on_postgres_when_asked(&mut config).await;
        let creds = confab::create_app(&config, "test").await.unwrap();
        config.chatserver_addr = Some("127.0.0.1:0".into());
        config.chatserver_app_id = Some(creds.app.id.get());
        tweak(&mut config);
        Self::running(dir, config, creds).await
    }

    /// The ChatServer face's address.
    pub fn chatserver_addr(&self) -> std::net::SocketAddr {
        self.server
            .as_ref()
            .and_then(|s| s.chatserver_addr)
            .expect("the ChatServer face runs")
    }

    /// A second application in the same store, created while the server runs.
    pub async fn second_app(&self) -> (i64, String) {
        let c = confab::create_app(&self.config, "second").await.unwrap();
        (c.app.id.get(), c.app.auth_key)
    }

    /// A second node of the same cluster: the same store and app, its own listeners, and the
    /// configuration `tweak` gives it (its `nats_url`, `node_id`). Stop it before this one.
    pub async fn another_node(&self, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.config.clone();
        config.http_addr = "127.0.0.1:0".into();
        config.xmpp_addr = "127.0.0.1:0".into();
        if config.chatserver_addr.is_some() {
            config.chatserver_addr = Some("127.0.0.1:0".into());
        }
        tweak(&mut config);
        let server = Server::start(config.clone()).await.unwrap();
        Self {
            chatserver_base: server.chatserver_addr.map(|a| format!("http://{a}")),
            base: format!("http://{}", server.http_addr),
            server: Some(server),
            config,
            app_id: self.app_id,
            auth_key: self.auth_key.clone(),
            api_key: self.api_key.clone(),
            client: reqwest::Client::new(),
            _dir: None,
        }
    }

    /// The XMPP-over-TCP address of the running server.
    pub fn xmpp_addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("running").xmpp_addr
    }

    /// The HTTP (and XMPP-over-WebSocket) address of the running server.
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("running").http_addr
    }

    /// Stops the server and starts it again on the same data directory (new ports).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let server = Server::start(self.config.clone()).await.unwrap();
        self.base = format!("http://{}", server.http_addr);
        self.chatserver_base = server.chatserver_addr.map(|a| format!("http://{a}"));
        self.server = Some(server);
    }

    /// Signs up `login` and logs in: `(user id, session token)`.
    pub async fn user(&self, login: &str) -> (i64, String) {
        let id = self.signup(login).await;
        (id, self.login(login).await)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Sends a request; a JSON body for POST/PUT, form text for DELETE when `form` is given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.header("CB-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        read(resp).await
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        read(req.send().await.unwrap()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn app_session(&self) -> String {
        let (s, v) = self
            .call(
                Method::POST,
                "/session.json",
                None,
                Some(json!({"application_id": self.app_id, "auth_key": self.auth_key})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["session"]["token"].as_str().unwrap().to_string()
    }

    /// Signs up `login` (password `password1`) and returns its id.
    pub async fn signup(&self, login: &str) -> i64 {
        let token = self.app_session().await;
        let (s, v) = self
            .call(
                Method::POST,
                "/users.json",
                Some(&token),
                Some(json!({"user": {"login": login, "password": "password1", "email": format!("{login}@example.com")}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["user"]["id"].as_i64().unwrap()
    }

    pub async fn user_session(&self, login: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/session.json",
            None,
            Some(
                json!({"application_id": self.app_id, "auth_key": self.auth_key,
                        "user": {"login": login, "password": password}}),
            ),
        )
        .await
    }

    pub async fn login(&self, login: &str) -> String {
        let (s, v) = self.user_session(login, "password1").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["session"]["token"].as_str().unwrap().to_string()
    }

    /// Creates a group dialog (type 2) owned by `owner_token`'s user; returns its id.
    pub async fn group(&self, owner_token: &str, occupants: &[i64]) -> String {
        let (s, v) = self
            .call(
                Method::POST,
                "/chat/Dialog.json",
                Some(owner_token),
                Some(json!({"type": 2, "name": "G", "occupants_ids": occupants})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["_id"].as_str().unwrap().to_string()
    }
}

async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:.200}"))
    };
    (status, value)
}

impl TestServer {
    /// Sends a request with a form-encoded body, as the SDK does on DELETE.
    pub async fn form(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        self.raw(
            self.client
                .request(method, self.url(path))
                .header("CB-Token", token)
                .header(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .body(body.to_string()),
        )
        .await
    }

    /// Calls the admin API with this app's key.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("CB-Administration-API-Key", &self.api_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.raw(req).await
    }
}

pub fn no_session() -> Value {
    json!({"errors": {"base": ["Required session does not exist"]}})
}
