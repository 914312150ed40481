//! The attacker's server: the URL `jku` and `x5u` name, which tollgate
//! must never connect to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// An HTTP server on 127.0.0.1:0 that serves the attacker's JWKS to
/// anyone and counts every connection: the URL `jku` and `x5u` name.
pub(crate) struct AttackerServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl AttackerServer {
    pub(crate) async fn start(jwks: String) -> AttackerServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the attacker's server");
        let addr = listener.local_addr().expect("attacker's address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                    jwks.len()
                );
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        AttackerServer {
            addr,
            connections,
            task,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for AttackerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
