//! Hot reload: the live authorizer ([`LiveAuthorizer`]) replaced whole
//! when SIGHUP arrives or the config file's content changes.
//!
//! The file is polled (every [`POLL_INTERVAL`]) by reading it through its
//! path, so a Kubernetes ConfigMap update, which swaps the `..data` symlink
//! rather than writing the file, is seen like any edit. A new config is
//! loaded and validated whole; a broken one is logged, counted in
//! `tollgate_config_reloads_total{outcome="error"}`, and the old one keeps
//! serving. Checks already running finish on the authorizer they started
//! with, since they hold its `Arc`; providers whose settings did not change
//! are kept with their caches (see [`crate::authz::Authorizer::renew`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditSettings;
use crate::authz::LiveAuthorizer;
use crate::config::{Config, ServerSettings};
use crate::error_chain::ErrorChain;
use crate::telemetry::TelemetrySettings;

/// How often the config file is read to see whether it changed. Reading a
/// few KiB once a second costs nothing and needs no file-watch dependency.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Reloads the config file at `path` into `live`.
pub(crate) struct Reloader {
    path: PathBuf,
    client: reqwest::Client,
    /// The file content last loaded or refused, so a broken file is
    /// reported once, not every poll.
    seen: Option<Vec<u8>>,
    /// What the server was started with: only a restart changes it.
    server: ServerSettings,
    /// The span exporter is built once, at start.
    tracing: Option<crate::telemetry::TracingSettings>,
    /// So is the audit stream.
    audit: Option<AuditSettings>,
}

impl Reloader {
    /// Watches `path`, whose current content the server was started with:
    /// `server` and `telemetry`. `client` fetches keys for the providers a
    /// reload starts.
    pub(crate) fn new(
        path: PathBuf,
        server: &ServerSettings,
        telemetry: &TelemetrySettings,
        client: reqwest::Client,
    ) -> Reloader {
        let seen = std::fs::read(&path).ok();
        Reloader {
            path,
            client,
            seen,
            server: server.clone(),
            tracing: telemetry.tracing.clone(),
            audit: None,
        }
    }

    /// Notes the `audit` settings the server started with: a reload that
    /// changes them says they need a restart.
    pub(crate) fn auditing(mut self, audit: Option<&AuditSettings>) -> Reloader {
        self.audit = audit.cloned();
        self
    }

    /// Reloads on SIGHUP and on a change of the file's content, forever;
    /// the server aborts this task when it stops.
    pub(crate) async fn run(mut self, live: Arc<LiveAuthorizer>) {
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
    pub(crate) fn reload(&self, live: &LiveAuthorizer, trigger: &'static str) -> bool {
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
        if config.server != self.server {
            tracing::warn!(
                %path,
                "server listeners (grpc_listen, http_enabled, http_listen, http_path_prefix, admin_listen), tls, idp_ca_file, max_concurrent_checks, check_timeout and shutdown_grace apply at the next restart"
            );
        }
        if config.telemetry.tracing != self.tracing {
            tracing::warn!(%path, "tracing applies at the next restart");
        }
        if config.audit != self.audit {
            tracing::warn!(%path, "audit applies at the next restart");
        }
        let routes = config.authz.routes.len();
        // The CA roots a restart would read anew; a reload keeps the
        // server's, as its key-fetching client does.
        let next = live
            .current()
            .renew(config.authz, &self.client, &self.server.idp_roots);
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
