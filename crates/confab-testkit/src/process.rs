//! The real `confab` binary as a child process, for tests that `kill -9` it. The caller passes the
//! binary's path (`env!("CARGO_BIN_EXE_confab")` in the `confab` crate's tests).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `confab serve`: the child (killed on drop) and where it listens.
pub struct ConfabProcess {
    pub child: Child,
    /// `host:port` of the HTTP listener.
    pub http: String,
    pub xmpp: std::net::SocketAddr,
}

impl ConfabProcess {
    /// `confab serve` on `data_dir` with ports chosen by the OS and the extra `CONFAB_*`
    /// variables `env`; returns once it said where it listens.
    pub async fn serve(bin: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .env("CONFAB_DATA_DIR", data_dir)
            .env("CONFAB_HTTP_ADDR", "127.0.0.1:0")
            .env("CONFAB_XMPP_ADDR", "127.0.0.1:0")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start confab");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut http, mut xmpp) = (None, None);
        while http.is_none() || xmpp.is_none() {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("confab did not say where it listens")
                .unwrap()
                .expect("confab exited");
            let value = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(|v| v.trim_end_matches(',').to_string())
            };
            if line.contains("listening") {
                http = http.or(value("http="));
                xmpp = xmpp.or(value("xmpp="));
            }
        }
        // Keep draining the log so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            http: http.unwrap(),
            xmpp: xmpp.unwrap().parse().unwrap(),
        }
    }

    /// SIGKILL: no shutdown, no flush, no goodbye to other nodes.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }
}
