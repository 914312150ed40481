//! Where a provider's verification keys come from, and the cache that keeps them fresh.
//!
//! A remote provider's JWKS is fetched by a background task on the schedule
//! the IdP asks for (`Cache-Control: max-age`, clamped), refetched early when a
//! token names a `kid` we do not know (key rotation), and kept serving for a
//! while when the IdP is unreachable. Fetches are single-flight per provider.
//!
//! # Layout
//! - [`settings`]: the key source and the fetch schedule.
//! - [`error`]: why keys could not be had.
//! - `remote`: the fetching cache behind a remote source.

pub(crate) mod error;
mod remote;
pub(crate) mod settings;

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::Instrument as _;

pub(crate) use error::JwksError;
use remote::{Origin, Remote};
pub(crate) use settings::JwksSettings;
pub use settings::KeySource;

use crate::token::jwk::KeySet;

/// A provider's keys: a cheap, cloneable handle. A remote provider's refresh
/// task stops when the last handle is dropped.
#[derive(Clone)]
pub struct Jwks {
    keys: Keys,
    _refresh: Option<Arc<RefreshTask>>,
}

#[derive(Clone)]
enum Keys {
    Static(Arc<KeySet>),
    Remote(Arc<Remote>),
}

/// Aborts the refresh task when the last [`Jwks`] handle goes away.
struct RefreshTask(AbortHandle);

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Jwks");
        if let Keys::Remote(remote) = &self.keys {
            debug.field("provider", &remote.provider());
        }
        debug
            .field("keys", &self.current().map(|keys| keys.len()))
            .finish()
    }
}

impl Jwks {
    /// Keys from configuration: always loaded, never fetched.
    pub fn new_static(keys: KeySet) -> Jwks {
        Jwks {
            keys: Keys::Static(Arc::new(keys)),
            _refresh: None,
        }
    }

    /// Starts the background refresh task (first fetch immediately) for a
    /// remote source; a [`KeySource::Static`] source gives [`Jwks::new_static`].
    /// `provider` names the provider in logs and errors.
    ///
    /// Must be called within a Tokio runtime. The task holds only a weak
    /// reference and is aborted when the last handle is dropped.
    pub fn start(
        provider: String,
        source: KeySource,
        settings: JwksSettings,
        client: reqwest::Client,
    ) -> Jwks {
        let origin = match source {
            KeySource::Static(keys) => {
                crate::metrics::set_jwks_keys(&provider, keys.len());
                return Jwks::new_static(keys);
            }
            KeySource::Discovery { issuer } => Origin::Discovery { issuer },
            KeySource::JwksUri(uri) => Origin::JwksUri(uri),
        };
        let (remote, task) = Remote::start(provider, origin, settings, client);
        Jwks {
            keys: Keys::Remote(remote),
            _refresh: Some(Arc::new(RefreshTask(task))),
        }
    }

    /// The keys to verify with now: `None` if never loaded, or if the last
    /// good fetch is older than `max_stale`.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        match &self.keys {
            Keys::Static(keys) => Some(Arc::clone(keys)),
            Keys::Remote(remote) => remote.current(),
        }
    }

    /// A token named a kid we do not have (or there are no keys yet): refetch,
    /// at most once per `unknown_kid_refetch_interval`, with one fetch in
    /// flight no matter how many callers wait (all waiters get its result).
    ///
    /// Returns the keys to use afterwards (possibly the previous ones, if the
    /// refetch failed or was rate-limited), or [`JwksError::NoKeys`] carrying
    /// the last fetch error when there are no usable keys.
    pub async fn refetch_for_unknown_kid(&self) -> Result<Arc<KeySet>, JwksError> {
        match &self.keys {
            Keys::Static(keys) => Ok(Arc::clone(keys)),
            Keys::Remote(remote) => {
                // Spawned: a check that gives up (Envoy's ext_authz timeout)
                // must not abort the fetch it started, or a slow IdP's new
                // keys would wait for the next rate-limit window.
                let provider = remote.provider().to_owned();
                let remote = Arc::clone(remote);
                // The check's span goes along, so the fetch is its child.
                let fetch = async move { remote.refetch_for_unknown_kid().await };
                tokio::spawn(fetch.instrument(tracing::Span::current()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(JwksError::NoKeys {
                            provider,
                            cause: None,
                        })
                    })
            }
        }
    }

    /// Whether this handle fetches what `source` with `settings` would for
    /// `provider`, so a config reload can keep it (and its cached keys).
    /// Static keys are never kept: they are rebuilt from the new file.
    pub fn fetches_like(
        &self,
        provider: &str,
        source: &KeySource,
        settings: &JwksSettings,
    ) -> bool {
        let Keys::Remote(remote) = &self.keys else {
            return false;
        };
        remote.fetches_like(provider, source, settings)
    }

    /// Becomes `true` once keys have been loaded at least once (for health
    /// reporting); static keys are loaded from the start.
    pub fn loaded(&self) -> watch::Receiver<bool> {
        match &self.keys {
            Keys::Static(_) => watch::channel(true).1,
            Keys::Remote(remote) => remote.loaded(),
        }
    }
}

#[cfg(test)]
mod tests;
