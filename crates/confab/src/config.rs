//! Configuration: defaults that work with no file, an optional TOML file, then `CONFAB_*`
//! environment variables (e.g. `CONFAB_DATA_DIR`, `CONFAB_HTTP_ADDR`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database lives.
    pub data_dir: PathBuf,
    /// REST, admin API and XMPP over WebSocket (`/ws`). A `:0` port binds a free one.
    pub http_addr: String,
    /// XMPP over TCP.
    pub xmpp_addr: String,
    /// The chat domain: user JIDs are `<userId>-<appId>@<domain>`.
    pub domain: String,
    /// A session expires after this many seconds without a request.
    pub session_ttl_secs: u64,
    /// Largest accepted HTTP request body.
    pub max_body_bytes: usize,
    /// Password attempts per minute for one login of one app.
    pub login_attempts_per_minute: u32,
    /// XMPP over direct TLS (e.g. `0.0.0.0:5223`); off when unset.
    pub xmpp_tls_addr: Option<String>,
    /// PEM certificate chain for STARTTLS / direct TLS; a self-signed one is generated when unset.
    pub tls_cert_path: Option<PathBuf>,
    /// PEM private key matching `tls_cert_path`.
    pub tls_key_path: Option<PathBuf>,
    /// Largest XMPP top-level element; larger ones end the stream with `policy-violation`.
    pub xmpp_max_stanza_bytes: usize,
    /// Deepest nesting of elements in one XMPP stanza (at most 256); deeper ends the stream with
    /// `policy-violation`.
    pub xmpp_max_depth: u32,
    /// Most attributes on one XMPP element.
    pub xmpp_max_attributes: u32,
    /// Longest XMPP attribute value, in bytes.
    pub xmpp_max_attribute_bytes: u32,
    /// Ping an XMPP client silent for this many seconds...
    pub xmpp_ping_interval_secs: u64,
    /// ...and disconnect it if it stays silent this many seconds more.
    pub xmpp_ping_timeout_secs: u64,
    /// A client with stream management that leaves a chat message unacknowledged this long is
    /// disconnected (its senders' acks wait for it).
    pub xmpp_ack_timeout_secs: u64,
    /// Outbound queue per XMPP session; a client that lets it fill up is disconnected.
    pub xmpp_session_queue_len: usize,
    /// Offline messages kept per user; further ones are bounced to the sender.
    pub xmpp_offline_max_per_user: u32,
    /// Contacts per user in the XMPP contact list (ConnectyCube allows 300).
    pub xmpp_max_contacts: u32,
    /// Most segments in one Rack parameter name (`a[b][]` has 3; at most 128).
    pub http_max_param_depth: usize,
    /// Most `name=value` pairs in one query string or form body.
    pub http_max_params: usize,
    /// Deepest nesting of arrays and objects in a JSON request body (at most 128).
    pub http_max_json_depth: usize,
    /// REST requests per second from one client address (0: no limit)...
    pub http_requests_per_sec_per_ip: u32,
    /// ...and how many it may send at once.
    pub http_burst_per_ip: u32,
    /// REST requests per second with one session token (0: no limit)...
    pub http_requests_per_sec_per_token: u32,
    /// ...and how many it may send at once.
    pub http_burst_per_token: u32,
    /// Password attempts per minute from one client address, REST and XMPP together (0: no limit).
    pub login_attempts_per_minute_per_ip: u32,
    /// Whether the per-address request and login limits apply to loopback clients (a reverse proxy
    /// on the same host, benchmarks, tests); off by default.
    pub per_ip_limits_on_loopback: bool,
    /// Stanzas per second one XMPP session may send before its socket is read more slowly (0: no
    /// limit)...
    pub xmpp_max_stanzas_per_sec: u32,
    /// ...and how many it may send at once.
    pub xmpp_stanza_burst: u32,
    /// Bytes per second one XMPP session may send before its socket is read more slowly (0: no
    /// limit)...
    pub xmpp_max_bytes_per_sec: u32,
    /// ...and how many it may send at once.
    pub xmpp_byte_burst: u32,
    /// Open XMPP connections (TCP, TLS and WebSocket) from one client address (0: no limit).
    pub xmpp_max_connections_per_ip: u32,
    /// Open XMPP connections in all (TCP, TLS and WebSocket; 0: no limit).
    pub max_connections: u32,
    /// The URL clients reach this server at (e.g. `https://chat.example.com`), used in blob upload
    /// URLs; when unset, `http://` and the request's `Host` header.
    pub public_url: Option<String>,
    /// Largest blob upload, in bytes (ConnectyCube's 100 MiB).
    pub blob_max_bytes: u64,
    /// A blob not completed this many seconds after its creation is removed, and its upload URL
    /// stops working.
    pub blob_incomplete_ttl_secs: u64,
    /// Keep blobs in an S3-compatible bucket instead of under `data_dir` when these three are set
    /// (e.g. `https://s3.eu-west-1.amazonaws.com`, path-style); the credentials come from
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. The bucket must exist.
    pub blob_s3_endpoint: Option<String>,
    pub blob_s3_bucket: Option<String>,
    pub blob_s3_region: Option<String>,
    /// The operator's webhook: every chat alert and event, one signed JSON POST per recipient.
    pub push_webhook_url: Option<String>,
    /// The key of the webhook's `X-Confab-Signature` HMAC-SHA256.
    pub push_webhook_secret: Option<String>,
    /// Web Push endpoints may be `http` and on private addresses (tests, private networks).
    /// `1`/`0` as well as `true`/`false`.
    #[serde(deserialize_with = "flag")]
    pub push_allow_private_endpoints: bool,
    /// A chat alert's text: `{sender}` (full name, else login) and `{text}` (the message).
    pub push_alert_template: String,
    /// Longest message text in a chat alert, in characters (longer is cut with `…`).
    pub push_alert_max_chars: usize,
    /// Most users one `POST /events` may address.
    pub push_event_max_recipients: u32,
    /// Chat alerts waiting to be queued at most; beyond it alerts are dropped (logged).
    pub push_alert_queue_len: usize,
    /// Push subscriptions (devices and channels) one user may have.
    pub push_max_subscriptions_per_user: usize,
    /// How long one request to a push provider may take before it is retried later.
    pub push_timeout_secs: u64,
    /// FCM: the service-account JSON file (HTTP v1 API); FCM is off when unset.
    pub fcm_credentials: Option<PathBuf>,
    /// FCM: the API's base URL.
    pub fcm_endpoint: String,
    /// APNs: the team's `.p8` signing key file; APNs is off unless this, `apns_key_id`,
    /// `apns_team_id` and `apns_topic` are set.
    pub apns_key: Option<PathBuf>,
    pub apns_key_id: Option<String>,
    pub apns_team_id: Option<String>,
    /// APNs: the app's bundle id (`.voip` is appended for VoIP pushes).
    pub apns_topic: Option<String>,
    /// APNs: one endpoint for both environments; Apple's production and sandbox hosts when unset.
    pub apns_endpoint: Option<String>,
    /// APNs: a PEM CA certificate trusted besides the system's roots.
    pub apns_ca_file: Option<PathBuf>,
    /// Web Push: base64url of the 32-byte P-256 VAPID private key; Web Push is off when unset.
    pub vapid_private_key: Option<String>,
    /// Web Push: the VAPID contact (`mailto:` or `https:` URL).
    pub vapid_subject: String,
    /// The ChatServer face (REST + JSON WebSocket), e.g. `0.0.0.0:8081`; off when unset. A `:0`
    /// port binds a free one.
    pub chatserver_addr: Option<String>,
    /// The ConnectyCube app whose users ChatServer users are; required with `chatserver_addr`.
    pub chatserver_app_id: Option<i64>,
    /// Open ChatServer sockets on this node at most; `0`: no cap.
    pub chatserver_max_sockets: usize,
    /// Device sessions one ChatServer user may have; a login beyond it ends the oldest. `0`: no cap.
    pub chatserver_max_sessions_per_user: usize,
    /// `postgres://…`: the shared store of several nodes; unset, the embedded SQLite store under
    /// `data_dir`.
    pub database_url: Option<String>,
    /// `nats://host:port[,…]`: the bus between nodes; unset, this node is alone.
    pub nats_url: Option<String>,
    /// This node's name on the bus; unset, a random one at each start.
    pub node_id: Option<String>,
    /// A node not heard from for this long is taken as gone: its users are no longer online there.
    pub node_timeout_secs: u64,
}

/// A switch written as `true`/`false` or `1`/`0` (environment variables are usually the latter).
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(u8),
        Text(String),
    }
    match Flag::deserialize(d)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Text(t) if matches!(t.as_str(), "1" | "true") => Ok(true),
        Flag::Text(t) if matches!(t.as_str(), "0" | "false" | "") => Ok(false),
        _ => Err(serde::de::Error::custom("expected true/false or 1/0")),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            http_addr: "127.0.0.1:8080".into(),
            xmpp_addr: "127.0.0.1:5222".into(),
            domain: "localhost".into(),
            session_ttl_secs: 2 * 60 * 60,
            max_body_bytes: 1024 * 1024,
            login_attempts_per_minute: 30,
            xmpp_tls_addr: None,
            tls_cert_path: None,
            tls_key_path: None,
            xmpp_max_stanza_bytes: 256 * 1024,
            xmpp_max_depth: 32,
            xmpp_max_attributes: 64,
            xmpp_max_attribute_bytes: 16 * 1024,
            xmpp_ping_interval_secs: 60,
            xmpp_ping_timeout_secs: 30,
            xmpp_ack_timeout_secs: 15,
            xmpp_session_queue_len: 1024,
            xmpp_offline_max_per_user: 1000,
            xmpp_max_contacts: 300,
            http_max_param_depth: 8,
            http_max_params: 1000,
            http_max_json_depth: 16,
            http_requests_per_sec_per_ip: 200,
            http_burst_per_ip: 400,
            http_requests_per_sec_per_token: 200,
            http_burst_per_token: 400,
            login_attempts_per_minute_per_ip: 600,
            per_ip_limits_on_loopback: false,
            xmpp_max_stanzas_per_sec: 100,
            xmpp_stanza_burst: 500,
            xmpp_max_bytes_per_sec: 512 * 1024,
            xmpp_byte_burst: 2 * 1024 * 1024,
            xmpp_max_connections_per_ip: 1000,
            // The process may keep 20,000 files open: what is left serves HTTP and the database.
            max_connections: 19_500,
            public_url: None,
            blob_max_bytes: 100 * 1024 * 1024,
            blob_incomplete_ttl_secs: 24 * 60 * 60,
            blob_s3_endpoint: None,
            blob_s3_bucket: None,
            blob_s3_region: None,
            push_webhook_url: None,
            push_webhook_secret: None,
            push_allow_private_endpoints: false,
            push_alert_template: "{sender}: {text}".into(),
            push_alert_max_chars: 200,
            push_event_max_recipients: 10_000,
            push_timeout_secs: 10,
            push_max_subscriptions_per_user: 25,
            push_alert_queue_len: 65_536,
            fcm_credentials: None,
            fcm_endpoint: "https://fcm.googleapis.com".into(),
            apns_key: None,
            apns_key_id: None,
            apns_team_id: None,
            apns_topic: None,
            apns_endpoint: None,
            apns_ca_file: None,
            vapid_private_key: None,
            vapid_subject: "mailto:admin@localhost".into(),
            chatserver_addr: None,
            chatserver_app_id: None,
            chatserver_max_sockets: 10_000,
            chatserver_max_sessions_per_user: 50,
            database_url: None,
            nats_url: None,
            node_id: None,
            node_timeout_secs: 10,
        }
    }
}

impl Config {
    /// Defaults, then the file (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    path.display()
                ))));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only keys the config has: other CONFAB_* variables (CONFAB_LOG, CONFAB_CONFIG, a test
        // harness's own) are not configuration and must not fail `deny_unknown_fields`.
        let known: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        figment
            .merge(Env::prefixed("CONFAB_").filter(move |k| known.iter().any(|n| k == n.as_str())))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_read_one_and_zero_as_well_as_true_and_false() {
        for (text, expect) in [("1", true), ("true", true), ("0", false), ("false", false)] {
            let toml = format!("push_allow_private_endpoints = \"{text}\"");
            let c: Config = Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string(&toml))
                .extract()
                .unwrap();
            assert_eq!(c.push_allow_private_endpoints, expect, "{text}");
        }
        let bad = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("push_allow_private_endpoints = \"maybe\""))
            .extract::<Config>();
        assert!(bad.is_err());
    }
}
