//! A TCP forwarder that can be cut: puts one node behind a network partition from the others
//! (its bus connection breaks and new ones are refused) while its own clients stay connected.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct CuttableProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Flips to `true` to break the connections open when cut.
    breaker: watch::Sender<u64>,
}

impl CuttableProxy {
    /// Forwards a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let (breaker, _) = watch::channel(0u64);
        let (cut2, breaker2) = (cut.clone(), breaker.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    // Refused: closed at once.
                    continue;
                }
                let mut broken = breaker2.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut c, mut s) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut c, &mut s) => {}
                        _ = broken.changed() => {}
                    }
                });
            }
        });
        Self { addr, cut, breaker }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Breaks every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.breaker.send_modify(|n| *n += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}
