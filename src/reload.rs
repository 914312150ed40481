//! Hot reload: the live [`Authorizer`] behind a shared handle, replaced
//! whole when SIGHUP arrives or the config file's content changes.
//!
//! The file is polled (every [`POLL_INTERVAL`]) by reading it through its
//! path, so a Kubernetes ConfigMap update, which swaps the `..data` symlink
//! rather than writing the file, is seen like any edit. A new config is
//! loaded and validated whole; a broken one is logged, counted in
//! `tollgate_config_reloads_total{outcome="error"}`, and the old one keeps
//! serving. Checks already running finish on the authorizer they started
//! with, since they hold its `Arc`.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::authz::Authorizer;
use crate::config::{Config, ServerSettings};
use crate::telemetry::ErrorChain;

/// How often the config file is read to see whether it changed. Reading a
/// few KiB once a second costs nothing and needs no file-watch dependency.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The authorizer checks use now; cheap to read, swapped whole on reload.
pub struct LiveAuthorizer {
    // Read once per check to clone the Arc, written once per reload; never
    // held across an await, so checks never wait on a reload.
    current: RwLock<Arc<Authorizer>>,
}

impl LiveAuthorizer {
    /// Serves `authorizer` until the first reload.
    pub fn new(authorizer: Authorizer) -> LiveAuthorizer {
        LiveAuthorizer {
            current: RwLock::new(Arc::new(authorizer)),
        }
    }

    /// The authorizer to decide one check with.
    pub fn current(&self) -> Arc<Authorizer> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn replace(&self, next: Authorizer) {
        let next = Arc::new(next);
        let previous = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
            next,
        );
        // Dropped outside the lock: the last reference may stop refresh tasks.
        drop(previous);
    }
}

/// Settings the running listener was built with; a reload cannot change them.
#[derive(Debug, PartialEq)]
struct ListenerSettings {
    grpc_listen: std::net::SocketAddr,
    http_listen: Option<std::net::SocketAddr>,
    http_path_prefix: Option<String>,
    admin_listen: std::net::SocketAddr,
    max_concurrent_checks: usize,
    check_timeout: Duration,
    shutdown_grace: Duration,
    tls: Option<crate::tls::TlsSettings>,
    idp_ca_file: Option<std::path::PathBuf>,
}

impl ListenerSettings {
    fn of(server: &ServerSettings) -> ListenerSettings {
        ListenerSettings {
            grpc_listen: server.grpc_listen,
            http_listen: server.http_listen,
            http_path_prefix: server.http_path_prefix.clone(),
            admin_listen: server.admin_listen,
            max_concurrent_checks: server.max_concurrent_checks,
            check_timeout: server.check_timeout,
            shutdown_grace: server.shutdown_grace,
            tls: server.tls.clone(),
            idp_ca_file: server.idp_ca_file.clone(),
        }
    }
}

/// Reloads the config file at `path` into `live`.
pub struct Reloader {
    path: PathBuf,
    client: reqwest::Client,
    /// The file content last loaded or refused, so a broken file is
    /// reported once, not every poll.
    seen: Option<Vec<u8>>,
    listener: ListenerSettings,
    /// The span exporter is built once, at start.
    tracing: Option<crate::config::TracingSettings>,
}

impl Reloader {
    /// Watches `path`, whose current content `config` was loaded from.
    pub fn new(path: PathBuf, config: &Config, client: reqwest::Client) -> Reloader {
        let seen = std::fs::read(&path).ok();
        Reloader {
            path,
            client,
            seen,
            listener: ListenerSettings::of(&config.server),
            tracing: config.tracing.clone(),
        }
    }

    /// Reloads on SIGHUP and on a change of the file's content, forever;
    /// the server aborts this task when it stops.
    pub async fn run(mut self, live: Arc<LiveAuthorizer>) {
        let mut hangup = hangup_signal();
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = hangup.recv() => {
                    self.seen = tokio::fs::read(&self.path).await.ok();
                    self.reload(&live, "SIGHUP");
                }
                _ = poll.tick() => {
                    // An unreadable file (mid-swap, or removed) is not a
                    // change: the next poll sees what replaced it.
                    let Ok(content) = tokio::fs::read(&self.path).await else {
                        continue;
                    };
                    if self.seen.as_ref() != Some(&content) {
                        self.seen = Some(content);
                        self.reload(&live, "file change");
                    }
                }
            }
        }
    }

    /// Loads and validates the file and swaps the authorizer; on any error
    /// the old one keeps serving. Returns whether the new config is live.
    pub fn reload(&self, live: &LiveAuthorizer, trigger: &'static str) -> bool {
        let path = self.path.display();
        let config = match Config::load(&self.path) {
            Ok(config) => config,
            Err(error) => {
                tracing::error!(
                    %path,
                    trigger,
                    error = %ErrorChain(&error),
                    "config reload refused; the previous config keeps serving"
                );
                crate::metrics::record_config_reload(false);
                return false;
            }
        };
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        if ListenerSettings::of(&config.server) != self.listener {
            tracing::warn!(
                %path,
                "server listeners (grpc_listen, http_enabled, http_listen, http_path_prefix, admin_listen), tls, idp_ca_file, max_concurrent_checks, check_timeout and shutdown_grace apply at the next restart"
            );
        }
        if config.tracing != self.tracing {
            tracing::warn!(%path, "tracing applies at the next restart");
        }
        let routes = config.routes.len();
        let next = live.current().renew(config, self.client.clone());
        live.replace(next);
        crate::metrics::record_config_reload(true);
        tracing::info!(%path, trigger, routes, "config reloaded");
        true
    }
}

/// SIGHUP as a stream; never fires where there are no Unix signals or the
/// handler cannot be installed.
struct Hangup(Option<tokio::signal::unix::Signal>);

fn hangup_signal() -> Hangup {
    let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    if let Err(error) = &signal {
        tracing::warn!(%error, "cannot listen for SIGHUP; reload by editing the config file");
    }
    Hangup(signal.ok())
}

impl Hangup {
    async fn recv(&mut self) {
        let received = match &mut self.0 {
            Some(signal) => signal.recv().await.is_some(),
            None => false,
        };
        if !received {
            // The signal stream is gone: never fire again.
            self.0 = None;
            std::future::pending::<()>().await;
        }
    }
}
