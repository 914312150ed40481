//! Where a provider's verification keys come from, and the cache that keeps them fresh.
//!
//! A remote provider's JWKS is fetched by a background task on the schedule
//! the IdP asks for (`Cache-Control: max-age`, clamped), refetched early when a
//! token names a `kid` we do not know (key rotation), and kept serving for a
//! while when the IdP is unreachable. Fetches are single-flight per provider.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::sync::{Mutex, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{Instrument as _, debug, info, warn};

use super::fetch::{ReadError, display_url, read_capped, same_issuer};
use super::jwk::{JwksParseError, KeySet};
use super::sha256;
use crate::telemetry::ErrorChain;

/// Real JWKS and discovery documents are a few KiB; the cap keeps a broken or
/// hostile endpoint from exhausting memory.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Where a provider's keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// Keys given in configuration; never fetched.
    Static(KeySet),
    /// OpenID Connect Discovery: `{issuer}/.well-known/openid-configuration`
    /// names the `jwks_uri`.
    Discovery {
        /// The configured issuer, which the discovery document must repeat.
        issuer: String,
    },
    /// A JWKS URL given in configuration.
    JwksUri(String),
}

/// Timing of a remote provider's key fetches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksSettings {
    /// Refresh period when the response has no `Cache-Control: max-age`
    /// (default 5 min).
    pub refresh_interval: Duration,
    /// Lower bound for a `max-age` refresh period (default 1 min).
    pub min_refresh_interval: Duration,
    /// Upper bound for a `max-age` refresh period (default 24 h).
    pub max_refresh_interval: Duration,
    /// At most one refetch for unknown kids per this interval (default 30 s).
    pub unknown_kid_refetch_interval: Duration,
    /// How long the last good keys keep serving while fetches fail (default
    /// 24 h); after that the provider has no keys.
    pub max_stale: Duration,
    /// Delay before the next background fetch after a failed one (default 10 s).
    pub retry_interval: Duration,
    /// Total timeout of one HTTP fetch, body included (default 5 s).
    pub fetch_timeout: Duration,
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings {
            refresh_interval: Duration::from_secs(5 * 60),
            min_refresh_interval: Duration::from_secs(60),
            max_refresh_interval: Duration::from_secs(24 * 60 * 60),
            unknown_kid_refetch_interval: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 60 * 60),
            retry_interval: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// Fetching or using a provider's keys failed. Messages name URLs without
/// their credentials, and never include response bodies.
#[derive(thiserror::Error, Debug)]
pub enum JwksError {
    /// A configured or discovered URL does not parse.
    #[error("{what} is not a valid URL")]
    InvalidUrl {
        /// Which URL: "issuer", "configured jwks_uri" or "discovered jwks_uri".
        what: &'static str,
        /// The parse failure.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A discovered URL would fetch keys insecurely.
    #[error("refusing {uri}: {reason}")]
    InsecureUrl {
        /// The URL, without credentials.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed: connect, TLS, timeout or a broken body.
    #[error("fetching {uri} failed")]
    Http {
        /// The URL, without credentials.
        uri: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error("{uri} answered HTTP {status}")]
    Status {
        /// The URL, without credentials.
        uri: String,
        /// The status received.
        status: StatusCode,
    },
    /// The body exceeded the size cap.
    #[error("{uri} sent more than {limit} bytes")]
    TooLarge {
        /// The URL, without credentials.
        uri: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The body is not a JWKS.
    #[error("{uri} did not return a JWKS")]
    Parse {
        /// The URL, without credentials.
        uri: String,
        /// Why the document was refused.
        #[source]
        source: JwksParseError,
    },
    /// The JWKS parsed but holds no key we can verify with.
    #[error("{uri} returned no usable keys ({skipped} skipped)")]
    NoUsableKeys {
        /// The URL, without credentials.
        uri: String,
        /// How many keys were skipped.
        skipped: usize,
    },
    /// The discovery document is not JSON with string `issuer` and `jwks_uri`.
    #[error("discovery document {uri} is not valid")]
    Discovery {
        /// The URL, without credentials.
        uri: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The discovery document belongs to another issuer (OIDC Discovery §4.3).
    #[error("discovery document {uri} names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// The URL, without credentials.
        uri: String,
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The provider has no keys to verify with: never loaded, or stale past
    /// `max_stale`.
    #[error("no keys for provider {provider:?}")]
    NoKeys {
        /// The provider's configured name.
        provider: String,
        /// The last fetch failure, if one is known.
        #[source]
        cause: Option<Arc<JwksError>>,
    },
}

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
            debug.field("provider", &remote.provider);
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
        Jwks {
            keys: Keys::Remote(remote),
            _refresh: Some(Arc::new(RefreshTask(task.abort_handle()))),
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
                let provider = remote.provider.clone();
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
        let same_origin = match (&remote.origin, source) {
            (Origin::Discovery { issuer: old }, KeySource::Discovery { issuer: new }) => old == new,
            (Origin::JwksUri(old), KeySource::JwksUri(new)) => old == new,
            _ => false,
        };
        same_origin && remote.provider == provider && remote.settings == *settings
    }

    /// Becomes `true` once keys have been loaded at least once (for health
    /// reporting); static keys are loaded from the start.
    pub fn loaded(&self) -> watch::Receiver<bool> {
        match &self.keys {
            Keys::Static(_) => watch::channel(true).1,
            Keys::Remote(remote) => remote.loaded.subscribe(),
        }
    }
}

enum Origin {
    Discovery { issuer: String },
    JwksUri(String),
}

struct Remote {
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
    /// SHA-256 of the JWKS document the keys came from. A fetch that brings
    /// the same document keeps `keys` as they are (the same `Arc`), so
    /// verifications cached against them stand: otherwise every refresh, and
    /// every unknown-kid refetch a flood of forged `kid`s can trigger, would
    /// make every caller pay for a signature check again.
    document: [u8; 32],
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
    /// SHA-256 of the document.
    document: [u8; 32],
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
    fn read_cache(&self) -> RwLockReadGuard<'_, Cache> {
        // Nothing panics while the lock is held, and the data stays consistent
        // even if something did, so poisoning is ignored.
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
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

    async fn refetch_for_unknown_kid(&self) -> Result<Arc<KeySet>, JwksError> {
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
                let keys = match cache.good.take() {
                    Some(good) if good.document == fetched.document => good.keys,
                    _ => Arc::new(fetched.keys),
                };
                cache.good = Some(Good {
                    keys,
                    fetched_at: now,
                    document: fetched.document,
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
            document: sha256(&body.bytes),
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

/// Keys fetched over plain HTTP can be swapped by anyone on the path, so a
/// key URL must be https, or http on a loopback host. `from`, when given, is
/// where the URL came from (the issuer, or the previous redirect hop): https
/// may never lead to http.
pub fn check_key_url(url: &Url, from: Option<&Url>) -> Result<(), String> {
    let loopback = url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => Ok(()),
        "http" if from.is_some_and(|from| from.scheme() == "https") => Err(format!(
            "`{}` would downgrade from https to plain http",
            display_url(url)
        )),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{}` uses plain http; keys must be fetched over https (http is allowed only for localhost)",
            display_url(url)
        )),
        other => Err(format!(
            "`{}` has scheme `{other}`; use https",
            display_url(url)
        )),
    }
}

/// Redirects for key fetches: at most three hops, each of which must pass
/// [`check_key_url`]. IdPs publish final URLs; a redirect is followed only
/// where it cannot lower the transport's security.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > 3 {
            return attempt.error("more than 3 redirects");
        }
        match check_key_url(attempt.url(), attempt.previous().last()) {
            Ok(()) => attempt.follow(),
            Err(reason) => attempt.error(reason),
        }
    })
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
mod tests;
