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

use crate::authz::Authorizer;
use crate::config::Config;
use crate::grpc::{CheckLimits, CheckService, FILE_DESCRIPTOR_SET};
use crate::reload::{LiveAuthorizer, POLL_INTERVAL, Reloader};
use crate::tls::TlsConfig;

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
    /// The TLS certificate, key or client CA could not be loaded.
    #[error("cannot load the TLS files")]
    Tls(#[source] crate::tls::TlsError),
    /// The gRPC server failed.
    #[error("gRPC server failed")]
    Transport(#[source] tonic::transport::Error),
}

/// The client tollgate uses to reach identity providers.
pub fn idp_client(roots: &[reqwest::Certificate]) -> Result<reqwest::Client, reqwest::Error> {
    crate::token::fetch::client_builder_trusting(roots).build()
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
pub async fn serve_reloading(
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
    let client = idp_client(&config.server.idp_ca_certificates).map_err(ServeError::Client)?;
    let path_prefix: Option<Arc<str>> = config.server.http_path_prefix.as_deref().map(Arc::from);
    let limits = CheckLimits {
        max_concurrent: config.server.max_concurrent_checks,
        timeout: config.server.check_timeout,
    };
    let grace = config.server.shutdown_grace;
    let mtls = config
        .server
        .tls
        .as_ref()
        .is_some_and(|tls| tls.client_ca_file.is_some());
    let tls = config
        .server
        .tls
        .clone()
        .map(TlsConfig::load)
        .transpose()
        .map_err(ServeError::Tls)?;
    // HTTP mode serves the same certificate, with ALPN http/1.1.
    let http_tls = match (&config.server.tls, &listeners.http) {
        (Some(settings), Some(_)) => Some(Arc::new(
            TlsConfig::load_http1(settings.clone()).map_err(ServeError::Tls)?,
        )),
        _ => None,
    };
    let http_tls_watch = http_tls
        .clone()
        .map(|tls| tokio::spawn(tls.watch(POLL_INTERVAL)));
    let reloader = path.map(|path| Reloader::new(path, &config, client.clone()));
    let live = Arc::new(LiveAuthorizer::new(Authorizer::new(config, client)));
    let reloading = reloader.map(|reloader| tokio::spawn(reloader.run(Arc::clone(&live))));
    let listener = listeners.grpc;
    // Turns true when shutdown starts; the HTTP servers stop on it.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let stopping = Arc::new(stopping);
    let stopping_after = stopping.clone();
    // Turns true with gRPC health SERVING; admin `/readyz` reads it.
    let (serving_sender, serving) = tokio::sync::watch::channel(false);
    let gate = Arc::new(crate::limits::CheckGate::new(limits));
    let http_mode = listeners.http.map(|listener| crate::http::HttpMode {
        listener,
        tls: http_tls,
        path_prefix,
    });
    let http_servers = crate::http::spawn(&live, &gate, http_mode, listeners.admin, &stop, serving);

    let (reporter, health) = tonic_health::server::health_reporter();
    set_status(&reporter, ServingStatus::NotServing).await;
    let readiness = tokio::spawn(report_ready(
        live.current(),
        reporter.clone(),
        serving_sender,
    ));

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

    if let Ok(addr) = listener.local_addr() {
        let tls = match &tls {
            None => "off",
            Some(_) if mtls => "mutual",
            Some(_) => "on",
        };
        tracing::info!(%addr, tls, "serving envoy.service.auth.v3.Authorization");
    }
    let check = AuthorizationServer::new(CheckService::new(live, gate));
    let (draining, drain_started) = oneshot::channel::<()>();
    let router = Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(check);
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
    let mut tls_watch = None;
    let server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match tls {
            Some(tls) => {
                let tls = Arc::new(tls);
                tls_watch = Some(tokio::spawn(Arc::clone(&tls).watch(POLL_INTERVAL)));
                let incoming = crate::tls::incoming(listener, tls);
                Box::pin(router.serve_with_incoming_shutdown(incoming, stop))
            }
            None => {
                Box::pin(router.serve_with_incoming_shutdown(TcpIncoming::from(listener), stop))
            }
        };
    // Bounds the drain: a client holding a stream open cannot keep the
    // process alive past the grace period.
    let grace_elapsed = async {
        if drain_started.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = server => result.map_err(ServeError::Transport),
        () = grace_elapsed => {
            tracing::warn!(?grace, "shutdown grace period elapsed; closing remaining streams");
            Ok(())
        }
    };
    readiness.abort();
    for task in [reloading, tls_watch, http_tls_watch].into_iter().flatten() {
        task.abort();
    }
    // The gRPC server may have failed without a shutdown: stop the others too.
    stopping_after.send_replace(true);
    for server in http_servers {
        let _ = server.await;
    }
    result
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
pub async fn shutdown_signal() {
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
