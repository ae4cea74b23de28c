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
        figment
            .merge(Env::prefixed("CONFAB_"))
            .extract()
            .map_err(Box::new)
    }
}
