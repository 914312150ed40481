//! tollgate's gRPC server in the test's own runtime: `tollgate::serve`
//! on 127.0.0.1:0 with a oneshot shutdown, and a connected tonic channel.
//! Faster than the real binary ([`super::TollgateProcess`]) and able to
//! observe what `serve` returns.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate::Config;
use tollgate::ServeError;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Bound on every wait here: for `serve` to return, or for a health status.
pub const INPROCESS_LIMIT: Duration = Duration::from_secs(10);

/// tollgate serving on 127.0.0.1:0 in this runtime; shut down on drop.
pub struct InProcess {
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    admin_addr: SocketAddr,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), ServeError>>>,
}

impl InProcess {
    /// Loads `yaml` (relative key files resolved against `base_dir`), serves
    /// it on 127.0.0.1:0 (gRPC, admin, and HTTP mode when the config enables
    /// it; each on its own port) and connects a channel to it. Health is not
    /// awaited.
    pub async fn start(yaml: &str, base_dir: &Path) -> InProcess {
        let config = Config::from_yaml(yaml, base_dir)
            .unwrap_or_else(|e| panic!("test config refused: {e}\n{yaml}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding tollgate on 127.0.0.1:0");
        let addr = listener.local_addr().expect("tollgate address");
        let bind = async || {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binding an HTTP listener on 127.0.0.1:0")
        };
        let http = match config.http_mode() {
            true => Some(bind().await),
            false => None,
        };
        let admin = bind().await;
        let http_addr = http.as_ref().map(|l| l.local_addr().expect("HTTP address"));
        let admin_addr = admin.local_addr().expect("admin address");
        let listeners = tollgate::Listeners {
            grpc: listener,
            http,
            admin: Some(admin),
        };
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(tollgate::serve_with(config, listeners, async {
            // A dropped sender is a shutdown too.
            let _ = stop.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("tollgate URI")
            .connect()
            .await
            .expect("connecting to tollgate");
        InProcess {
            addr,
            http_addr,
            admin_addr,
            channel,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Where the gRPC services listen.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where HTTP ext_authz mode listens, when the config enables it.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Where the admin endpoints listen.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The connected channel, shared by every client of this server.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// A gRPC health client on [`InProcess::channel`].
    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// One health `Check` of `service`.
    pub async fn status(&self, service: &str) -> ServingStatus {
        let reply: HealthCheckResponse = self
            .health()
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check of {service:?}: {e:?}"))
            .into_inner();
        ServingStatus::try_from(reply.status).expect("a known serving status")
    }

    /// A health `Watch` stream for `service`.
    pub async fn watch(&self, service: &str) -> tonic::Streaming<HealthCheckResponse> {
        self.health()
            .watch(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("health watch of {service:?}: {e:?}"))
            .into_inner()
    }

    /// Completes the shutdown future `serve` was given.
    pub fn trigger_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).expect("serve is still running");
        }
    }

    /// Triggers shutdown and returns what `serve` returned (bounded wait).
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        self.trigger_shutdown();
        let server = self.server.take().expect("server task");
        tokio::time::timeout(INPROCESS_LIMIT, server)
            .await
            .expect("serve did not return after shutdown")
            .expect("serve panicked")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Reads `stream` until it reports `wanted` (within [`INPROCESS_LIMIT`]),
/// returning every status seen.
pub async fn watch_until(
    stream: &mut tonic::Streaming<HealthCheckResponse>,
    wanted: ServingStatus,
) -> Vec<ServingStatus> {
    let mut seen = Vec::new();
    tokio::time::timeout(INPROCESS_LIMIT, async {
        loop {
            let reply = stream
                .message()
                .await
                .expect("health watch stream")
                .expect("health watch ended early");
            let status = ServingStatus::try_from(reply.status).expect("a known serving status");
            seen.push(status);
            if status == wanted {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {wanted:?} within {INPROCESS_LIMIT:?}; saw {seen:?}"));
    seen
}
