//! Serving: binds the gRPC Check service with health and reflection beside
//! it, and the HTTP listeners (HTTP ext_authz mode, admin) when given;
//! reports readiness once every provider has keys, and stops gracefully.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::audit::Auditor;
use crate::authz::{Authorizer, Checkpoint, LiveAuthorizer};
use crate::config::Config;
use crate::grpc::{CheckService, FILE_DESCRIPTOR_SET};
use crate::reload::{POLL_INTERVAL, Reloader};

/// How long queued audit records get to be exported at shutdown.
const AUDIT_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// The fully qualified name health checks ask about.
pub const CHECK_SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The HTTP client for IdPs could not be built.
    #[error("cannot build the HTTP client for identity providers")]
    Client(#[source] reqwest::Error),
    /// Reflection descriptors are broken (a build problem).
    #[error("cannot build the reflection service")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
}

/// The client tollgate uses to reach identity providers.
fn idp_client(roots: &[reqwest::Certificate]) -> Result<reqwest::Client, reqwest::Error> {
    crate::fetch::client_builder_trusting(roots).build()
}

/// The sockets `serve_with` answers on, bound by the caller (port 0 in tests).
pub struct Listeners {
    /// gRPC: Check, health and reflection.
    pub grpc: TcpListener,
    /// HTTP ext_authz mode, when enabled.
    pub http: Option<TcpListener>,
    /// Admin endpoints.
    pub admin: Option<TcpListener>,
}

/// Serves checks on `listener` until `shutdown` completes, then drains
/// in-flight calls and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let listeners = Listeners {
        grpc: listener,
        http: None,
        admin: None,
    };
    serve_with(config, listeners, shutdown).await
}

/// Serves gRPC and, when given, HTTP mode and admin on `listeners` until
/// `shutdown` completes; then drains all of them and returns.
pub async fn serve_with(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    run(config, None, listeners, shutdown).await
}

/// As [`serve_with`], and reloads the config from `path` (which `config`
/// was loaded from) on SIGHUP and whenever the file changes.
pub(crate) async fn serve_reloading(
    config: Config,
    path: PathBuf,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    run(config, Some(path), listeners, shutdown).await
}

async fn run(
    config: Config,
    path: Option<PathBuf>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let Config {
        server: settings,
        telemetry,
        authz,
        audit,
        warnings: _,
    } = config;
    let client = idp_client(&settings.idp_roots).map_err(ServeError::Client)?;
    let reloader = path.map(|path| {
        Reloader::new(path, &settings, &telemetry, client.clone()).auditing(audit.as_ref())
    });
    let (auditor, audit_task) = match audit {
        Some(audit) => {
            let (auditor, task) = Auditor::start(audit);
            (auditor, Some(task))
        }
        None => (Auditor::off(), None),
    };
    let authorizer = Authorizer::new(authz, &client, &settings.idp_roots);
    let live = Arc::new(LiveAuthorizer::new(authorizer));
    let reloading = reloader.map(|reloader| tokio::spawn(reloader.run(Arc::clone(&live))));
    let checkpoint = Arc::new(Checkpoint::new(Arc::clone(&live), settings.limits, auditor));
    // One watch reloads the certificate for both listeners.
    let tls_watch = settings
        .tls
        .clone()
        .map(|tls| tokio::spawn(tls.watch(POLL_INTERVAL)));
    // Turns true when shutdown starts; the HTTP servers stop on it.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    // Turns true with gRPC health SERVING; admin `/readyz` reads it.
    let (serving_sender, serving) = tokio::sync::watch::channel(false);
    let http_mode = listeners.http.map(|listener| crate::http::HttpMode {
        listener,
        tls: settings.tls.clone(),
        path_prefix: settings
            .http
            .as_ref()
            .and_then(|http| http.path_prefix.clone()),
    });
    let http_servers = crate::http::spawn(&checkpoint, http_mode, listeners.admin, &stop, serving);

    let (reporter, health) = tonic_health::server::health_reporter();
    set_status(&reporter, ServingStatus::NotServing).await;
    let readiness = tokio::spawn(report_ready(
        live.current(),
        reporter.clone(),
        serving_sender,
    ));
    let grpc = GrpcServer {
        listener: listeners.grpc,
        tls: settings.tls,
        grace: settings.shutdown_grace,
    };
    let result = grpc
        .serve(
            CheckService::new(checkpoint),
            health,
            reporter,
            &stopping,
            shutdown,
        )
        .await;
    readiness.abort();
    for task in [reloading, tls_watch].into_iter().flatten() {
        task.abort();
    }
    // The gRPC server may have failed without a shutdown: stop the others too.
    stopping.send_replace(true);
    for server in http_servers {
        let _ = server.await;
    }
    if let Some(task) = audit_task {
        task.finish(AUDIT_FLUSH).await;
    }
    result
}

/// The gRPC listener: Check, health and reflection, with TLS when set.
struct GrpcServer {
    listener: TcpListener,
    tls: Option<Arc<crate::tls::ServerTls>>,
    grace: std::time::Duration,
}

impl GrpcServer {
    /// Serves until `shutdown` completes, then drains for at most the grace
    /// period; `stopping` is told when shutdown starts.
    async fn serve(
        self,
        check: CheckService,
        health: tonic_health::pb::health_server::HealthServer<
            impl tonic_health::pb::health_server::Health,
        >,
        reporter: HealthReporter,
        stopping: &tokio::sync::watch::Sender<bool>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(ServeError::Reflection)?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(ServeError::Reflection)?;
        if let Ok(addr) = self.listener.local_addr() {
            let tls = match &self.tls {
                None => "off",
                Some(tls) if tls.mutual() => "mutual",
                Some(_) => "on",
            };
            tracing::info!(%addr, tls, "serving envoy.service.auth.v3.Authorization");
        }
        let (draining, drain_started) = oneshot::channel::<()>();
        let router = Server::builder()
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(AuthorizationServer::new(check));
        let stop = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing in-flight checks");
            stopping.send_replace(true);
            let _ = draining.send(());
            set_status(&reporter, ServingStatus::NotServing).await;
            // Health `Watch` streams end only when their status is cleared;
            // an open one would otherwise hold the drain forever.
            let mut reporter = reporter;
            reporter.clear_service_status("").await;
            reporter.clear_service_status(CHECK_SERVICE_NAME).await;
        };
        let server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send + '_>> =
            match self.tls {
                Some(tls) => {
                    let incoming = crate::tls::incoming(self.listener, tls);
                    Box::pin(router.serve_with_incoming_shutdown(incoming, stop))
                }
                None => Box::pin(
                    router.serve_with_incoming_shutdown(TcpIncoming::from(self.listener), stop),
                ),
            };
        // Bounds the drain: a client holding a stream open cannot keep the
        // process alive past the grace period.
        let grace = self.grace;
        let grace_elapsed = async {
            if drain_started.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server => result.map_err(ServeError::Transport),
            () = grace_elapsed => {
                tracing::warn!(?grace, "shutdown grace period elapsed; closing remaining streams");
                Ok(())
            }
        }
    }
}

/// Marks the service SERVING once every provider has loaded keys at least
/// once and knows its introspection endpoint.
async fn report_ready(
    authorizer: Arc<Authorizer>,
    reporter: HealthReporter,
    serving: tokio::sync::watch::Sender<bool>,
) {
    for provider in authorizer.providers() {
        if !provider.ready().await {
            return;
        }
    }
    tracing::info!("every provider has its keys and endpoints: SERVING");
    set_status(&reporter, ServingStatus::Serving).await;
    serving.send_replace(true);
}

async fn set_status(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status(CHECK_SERVICE_NAME, status)
        .await;
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
