//! The cache behind a remote key source: a background refresh on the IdP's
//! schedule, single-flight refetches for unknown kids, discovery, and the
//! last good keys kept through an outage.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use serde::Deserialize;
use tokio::sync::{Mutex, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{Instrument as _, debug, info, warn};

use super::error::JwksError;
use super::settings::{JwksSettings, KeySource};
use crate::error_chain::ErrorChain;
use crate::fetch::{ReadError, check_key_url, display_url, read_capped, same_issuer};
use crate::token::jwk::KeySet;

/// Real JWKS and discovery documents are a few KiB; the cap keeps a broken or
/// hostile endpoint from exhausting memory.
pub(super) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A remote key source.
pub(super) enum Origin {
    Discovery { issuer: String },
    JwksUri(String),
}

pub(super) struct Remote {
    provider: String,
    origin: Origin,
    settings: JwksSettings,
    client: reqwest::Client,
    // Read on every token check, written once per fetch; held only to clone
    // or swap Arcs, never across an await.
    cache: RwLock<Cache>,
    loaded: watch::Sender<bool>,
    // The single-flight gate: held across a whole fetch on purpose, so each
    // provider has at most one fetch in flight. Callers that queued behind a
    // fetch see `Cache::attempts` moved on and reuse its result.
    gate: Mutex<Gate>,
}

struct Cache {
    /// The last good keys.
    good: Option<Good>,
    /// Why the last fetch failed; cleared by a good one.
    last_error: Option<Arc<JwksError>>,
    /// Completed fetch attempts, so waiters can tell a fetch finished while
    /// they queued.
    attempts: u64,
    /// When the background task should fetch next.
    next_refresh: Instant,
}

/// Keys from the last good fetch.
struct Good {
    keys: Arc<KeySet>,
    fetched_at: Instant,
}

/// State only a fetch touches, guarded by the single-flight gate.
#[derive(Default)]
struct Gate {
    discovered_jwks_uri: Option<Url>,
    last_unknown_kid_refetch: Option<Instant>,
}

/// A successful JWKS fetch.
struct Fetched {
    keys: KeySet,
    uri: String,
    refresh_in: Duration,
}

/// A response body read under the size cap.
struct Body {
    bytes: Vec<u8>,
    max_age: Option<Duration>,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

async fn refresh_loop(remote: Weak<Remote>) {
    loop {
        // Upgrade only for one round, so dropping every handle ends the loop
        // even if the abort guard were bypassed.
        let Some(strong) = remote.upgrade() else {
            return;
        };
        let next = strong.refresh_if_due().await;
        drop(strong);
        tokio::time::sleep_until(next).await;
    }
}

impl Remote {
    /// Starts the refresh task (first fetch at once) for `origin`; it holds
    /// only a weak reference, and ends when aborted or when the last
    /// reference to the remote is gone.
    pub(super) fn start(
        provider: String,
        origin: Origin,
        settings: JwksSettings,
        client: reqwest::Client,
    ) -> (Arc<Remote>, AbortHandle) {
        let remote = Arc::new(Remote {
            provider,
            origin,
            settings,
            client,
            cache: RwLock::new(Cache {
                good: None,
                last_error: None,
                attempts: 0,
                next_refresh: Instant::now(),
            }),
            loaded: watch::Sender::new(false),
            gate: Mutex::new(Gate::default()),
        });
        let task = tokio::spawn(refresh_loop(Arc::downgrade(&remote)));
        (remote, task.abort_handle())
    }

    /// The provider's name, for logs and errors.
    pub(super) fn provider(&self) -> &str {
        &self.provider
    }

    /// Whether this fetches what `source` with `settings` would for
    /// `provider`.
    pub(super) fn fetches_like(
        &self,
        provider: &str,
        source: &KeySource,
        settings: &JwksSettings,
    ) -> bool {
        let same_origin = match (&self.origin, source) {
            (Origin::Discovery { issuer: old }, KeySource::Discovery { issuer: new }) => old == new,
            (Origin::JwksUri(old), KeySource::JwksUri(new)) => old == new,
            _ => false,
        };
        same_origin && self.provider == provider && self.settings == *settings
    }

    /// Turns `true` once keys have been loaded.
    pub(super) fn loaded(&self) -> watch::Receiver<bool> {
        self.loaded.subscribe()
    }

    fn read_cache(&self) -> RwLockReadGuard<'_, Cache> {
        // Nothing panics while the lock is held, and the data stays consistent
        // even if something did, so poisoning is ignored.
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn current(&self) -> Option<Arc<KeySet>> {
        let cache = self.read_cache();
        let good = cache.good.as_ref()?;
        (good.fetched_at.elapsed() <= self.settings.max_stale).then(|| Arc::clone(&good.keys))
    }

    async fn refresh_if_due(&self) -> Instant {
        let mut gate = self.gate.lock().await;
        // An unknown-kid refetch may have run while we slept and moved the
        // schedule.
        if Instant::now() >= self.read_cache().next_refresh {
            self.attempt(&mut gate, "refresh").await;
        }
        self.read_cache().next_refresh
    }

    pub(super) async fn refetch_for_unknown_kid(&self) -> Result<Arc<KeySet>, JwksError> {
        let attempts_seen = self.read_cache().attempts;
        let mut gate = self.gate.lock().await;
        let started = Instant::now();
        if self.read_cache().attempts != attempts_seen {
            debug!(provider = %self.provider, "reusing the JWKS fetch that finished while waiting");
        } else if gate.last_unknown_kid_refetch.is_some_and(|at| {
            started.duration_since(at) < self.settings.unknown_kid_refetch_interval
        }) {
            debug!(provider = %self.provider, "unknown-kid JWKS refetch rate-limited");
        } else {
            // Recorded before fetching: a check cancelled mid-fetch (Envoy's
            // timeout) still counts, or a hanging IdP would let every forged
            // kid start a fetch of its own.
            gate.last_unknown_kid_refetch = Some(started);
            self.attempt(&mut gate, "unknown kid").await;
        }
        drop(gate);
        self.current().ok_or_else(|| JwksError::NoKeys {
            provider: self.provider.clone(),
            cause: self.read_cache().last_error.clone(),
        })
    }

    /// One fetch, its outcome recorded in the cache and logged. Callers hold
    /// the gate.
    async fn attempt(&self, gate: &mut Gate, trigger: &'static str) {
        let span = crate::telemetry::jwks_fetch_span(&self.provider, trigger);
        let outcome = self.fetch(gate).instrument(span.clone()).await;
        crate::telemetry::record_call(&span, if outcome.is_ok() { "ok" } else { "error" });
        let now = Instant::now();
        let mut cache = self.write_cache();
        cache.attempts += 1;
        match outcome {
            Ok(fetched) => {
                let count = fetched.keys.len();
                // A fetch that brings the same document keeps the keys as
                // they are (the same `Arc`), so verifications cached against
                // them stand: otherwise every refresh, and every unknown-kid
                // refetch a flood of forged `kid`s can trigger, would make
                // every caller pay for a signature check again.
                let keys = match cache.good.take() {
                    Some(good) if *good.keys == fetched.keys => good.keys,
                    _ => Arc::new(fetched.keys),
                };
                cache.good = Some(Good {
                    keys,
                    fetched_at: now,
                });
                cache.last_error = None;
                cache.next_refresh = now + fetched.refresh_in;
                drop(cache);
                self.loaded.send_replace(true);
                crate::metrics::record_jwks_fetch(&self.provider, Some(count));
                info!(
                    provider = %self.provider,
                    uri = %fetched.uri,
                    keys = count,
                    refresh_in = ?fetched.refresh_in,
                    trigger,
                    "JWKS fetched"
                );
            }
            Err(error) => {
                let serving = cache
                    .good
                    .as_ref()
                    .filter(|good| now.duration_since(good.fetched_at) <= self.settings.max_stale)
                    .map(|good| good.keys.len());
                cache.next_refresh = now + self.settings.retry_interval;
                let error = Arc::new(error);
                cache.last_error = Some(Arc::clone(&error));
                drop(cache);
                crate::metrics::record_jwks_fetch(&self.provider, None);
                match serving {
                    Some(count) => warn!(
                        provider = %self.provider,
                        error = %ErrorChain(error.as_ref()),
                        trigger,
                        "JWKS fetch failed; keeping the previous {count} keys"
                    ),
                    None => warn!(
                        provider = %self.provider,
                        error = %ErrorChain(error.as_ref()),
                        trigger,
                        "JWKS fetch failed; the provider has no keys"
                    ),
                }
            }
        }
    }

    async fn fetch(&self, gate: &mut Gate) -> Result<Fetched, JwksError> {
        let jwks_uri = match &self.origin {
            Origin::JwksUri(uri) => parse_url(uri, "configured jwks_uri")?,
            Origin::Discovery { issuer } => match &gate.discovered_jwks_uri {
                Some(uri) => uri.clone(),
                None => {
                    let uri = self.discover(issuer).await?;
                    gate.discovered_jwks_uri = Some(uri.clone());
                    uri
                }
            },
        };
        let result = self.fetch_key_set(&jwks_uri).await;
        if result.is_err() {
            // The IdP may have moved its keys; the next attempt rediscovers.
            gate.discovered_jwks_uri = None;
        }
        result
    }

    async fn discover(&self, issuer: &str) -> Result<Url, JwksError> {
        let base = issuer.trim_end_matches('/');
        let uri = parse_url(
            &format!("{base}/.well-known/openid-configuration"),
            "issuer",
        )?;
        let body = self.get(&uri).await?;
        let document: DiscoveryDocument =
            serde_json::from_slice(&body.bytes).map_err(|source| JwksError::Discovery {
                uri: display_url(&uri),
                source,
            })?;
        if !same_issuer(&document.issuer, issuer) {
            return Err(JwksError::IssuerMismatch {
                uri: display_url(&uri),
                expected: issuer.to_owned(),
                found: document.issuer,
            });
        }
        let jwks_uri = parse_url(&document.jwks_uri, "discovered jwks_uri")?;
        check_key_url(&jwks_uri, Some(&uri)).map_err(|reason| JwksError::InsecureUrl {
            uri: display_url(&jwks_uri),
            reason,
        })?;
        debug!(provider = %self.provider, jwks_uri = %display_url(&jwks_uri), "discovered jwks_uri");
        Ok(jwks_uri)
    }

    async fn fetch_key_set(&self, uri: &Url) -> Result<Fetched, JwksError> {
        let body = self.get(uri).await?;
        let shown = display_url(uri);
        let (keys, skipped) =
            KeySet::from_json(&body.bytes).map_err(|source| JwksError::Parse {
                uri: shown.clone(),
                source,
            })?;
        for key in &skipped {
            warn!(
                provider = %self.provider,
                uri = %shown,
                kid = ?key.kid,
                reason = %key.reason,
                "JWKS key skipped"
            );
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys {
                uri: shown,
                skipped: skipped.len(),
            });
        }
        let settings = &self.settings;
        let refresh_in = body.max_age.map_or(settings.refresh_interval, |age| {
            // max/min rather than clamp: clamp panics if the bounds are crossed.
            age.max(settings.min_refresh_interval)
                .min(settings.max_refresh_interval)
        });
        Ok(Fetched {
            keys,
            uri: shown,
            refresh_in,
        })
    }

    /// GET under the fetch timeout, reading at most [`MAX_BODY_BYTES`] of the
    /// body whatever Content-Length claims. Any content type is accepted:
    /// IdPs label JWKS inconsistently and the parser decides.
    async fn get(&self, uri: &Url) -> Result<Body, JwksError> {
        let shown = display_url(uri);
        let http_error = |source: reqwest::Error| JwksError::Http {
            uri: shown.clone(),
            // The URL is in `uri` already, without credentials.
            source: source.without_url(),
        };
        let mut response = self
            .client
            .get(uri.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.settings.fetch_timeout)
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(JwksError::Status { uri: shown, status });
        }
        let max_age = cache_max_age(response.headers());
        let bytes =
            read_capped(&mut response, MAX_BODY_BYTES)
                .await
                .map_err(|error| match error {
                    ReadError::Http(source) => http_error(source),
                    ReadError::TooLarge => JwksError::TooLarge {
                        uri: shown.clone(),
                        limit: MAX_BODY_BYTES,
                    },
                })?;
        Ok(Body { bytes, max_age })
    }
}

fn parse_url(uri: &str, what: &'static str) -> Result<Url, JwksError> {
    Url::parse(uri).map_err(|source| JwksError::InvalidUrl {
        what,
        source: Box::new(source),
    })
}

/// `max-age` from Cache-Control; `None` when absent or when `no-cache` or
/// `no-store` asks us not to rely on it (the configured interval applies).
fn cache_max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim())),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                return None;
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(seconds) =
                    argument.and_then(|argument| argument.trim_matches('"').parse::<u64>().ok())
            {
                max_age = Some(Duration::from_secs(seconds));
            }
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_parsing() {
        let parse = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(CACHE_CONTROL, value.parse().unwrap());
            }
            cache_max_age(&headers)
        };
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&["max-age=300"]), Some(Duration::from_secs(300)));
        assert_eq!(
            parse(&["public, Max-Age = 120 , must-revalidate"]),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse(&["public", "max-age=\"7\""]),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse(&["max-age=300", "no-store"]), None);
        assert_eq!(parse(&["no-cache"]), None);
        assert_eq!(parse(&["max-age=soon"]), None);
        assert_eq!(parse(&["s-maxage=10"]), None);
    }
}
