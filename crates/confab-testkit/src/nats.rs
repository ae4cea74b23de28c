//! A private `nats-server` (Debian's `nats-server` package) on a free loopback port, stopped on drop.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub struct NatsServer {
    child: Child,
    pub port: u16,
}

/// Where the binary is: `CONFAB_NATS_SERVER`, else `PATH`, else Debian's `/usr/sbin`.
fn binary() -> String {
    if let Ok(path) = std::env::var("CONFAB_NATS_SERVER") {
        return path;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let candidate = std::path::Path::new(dir).join("nats-server");
        if candidate.exists() {
            return candidate.display().to_string();
        }
    }
    "/usr/sbin/nats-server".into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    /// Starts one and waits until it accepts connections.
    pub async fn start() -> Self {
        let port = free_port();
        let mut server = Self::on_port(port);
        server.wait_ready().await;
        server
    }

    fn on_port(port: u16) -> Self {
        let bin = binary();
        let child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {bin} ({e}): install nats-server (apt-get install nats-server)")
            });
        Self { child, port }
    }

    async fn wait_ready(&mut self) {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nats-server exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not start");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server and starts a new one on the same port (the bus going away and coming back).
    pub async fn restart(&mut self) {
        self.restart_after(Duration::ZERO).await;
    }

    /// As [`restart`](Self::restart), with the bus gone for `down` in between.
    pub async fn restart_after(&mut self, down: Duration) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        tokio::time::sleep(down).await;
        *self = Self::on_port(self.port);
        self.wait_ready().await;
    }
}
