//! One provider's introspector: answers cached by a hash of the token
//! (active ones until the TTL or `exp`, inactive ones briefly and apart),
//! one call per uncached token however many checks wait for it, and the
//! endpoint found once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use moka::future::Cache;
use reqwest::Url;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tracing::Instrument as _;

use super::error::{IntrospectionError, IntrospectionFailed};
use super::request;
use super::response::{self, Introspection};
use super::settings::{Endpoint, IntrospectionSettings};
use crate::claims::{Claims, unix_now, until_exp};
use crate::digest::TokenKey;
use crate::error_chain::ErrorChain;
use crate::fetch::same_issuer;
use crate::outcome::TokenProblem;
use crate::token::expectations::Expectations;

/// A cached active answer and how long it may be kept.
#[derive(Clone)]
struct Cached {
    claims: Arc<Map<String, Value>>,
    ttl: Duration,
}

/// Why a call left nothing in the cache of active answers.
enum NotCached {
    /// The token is inactive; the answer went to the inactive cache.
    Inactive,
    /// The call failed.
    Failed(Arc<IntrospectionError>),
}

/// Inactive answers live apart from active ones, in a cache this many
/// times smaller: anyone can send any number of made-up tokens, each an
/// inactive answer, and they must not push the active callers out (moka
/// admits a new entry over one used as rarely, so a flood could).
const INACTIVE_SHARE: u64 = 10;

/// Every inactive answer lives `inactive_ttl`.
struct InactiveLifetime(Duration);

impl moka::Expiry<TokenKey, ()> for InactiveLifetime {
    fn expire_after_create(
        &self,
        _key: &TokenKey,
        _value: &(),
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.0)
    }
}

struct CachedLifetime;

impl moka::Expiry<TokenKey, Cached> for CachedLifetime {
    fn expire_after_create(
        &self,
        _key: &TokenKey,
        value: &Cached,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Introspects tokens for one provider. Cheap to share behind an `Arc`.
pub(crate) struct Introspector {
    provider: Arc<str>,
    settings: IntrospectionSettings,
    expectations: Expectations,
    client: reqwest::Client,
    endpoint: OnceLock<Url>,
    discovery: Discovery,
    /// Active answers.
    cache: Cache<TokenKey, Cached>,
    /// Inactive answers, bounded apart (see [`INACTIVE_SHARE`]).
    inactive: Cache<TokenKey, ()>,
    labels: CacheLabels,
}

/// The `cache` labels of the two caches' metrics: one pair per provider,
/// so they name it; provider names are configured, so the set is bounded.
/// Made once, not per check.
struct CacheLabels {
    active: String,
    inactive: String,
}

/// Finding a discovered endpoint, one attempt at a time. A check that
/// queued behind an attempt takes that attempt's failure rather than
/// starting its own, so it waits for at most one attempt however many
/// checks queue (an endpoint cell that let each waiter retry in turn would
/// make the last of N checks wait N attempts).
#[derive(Default)]
struct Discovery {
    /// Attempts finished; read before queueing, to see one end meanwhile.
    attempts: AtomicU64,
    // Held across one attempt on purpose: the single-flight gate. Holds
    // why the last attempt failed.
    gate: Mutex<Option<String>>,
}

impl Introspector {
    /// Builds the introspector; nothing is fetched until first use or
    /// [`Introspector::ready`].
    pub(crate) fn new(
        provider: Arc<str>,
        settings: IntrospectionSettings,
        expectations: Expectations,
        client: reqwest::Client,
    ) -> Introspector {
        let endpoint = match &settings.endpoint {
            Endpoint::Configured(url) => OnceLock::from(url.clone()),
            Endpoint::Discovered { .. } => OnceLock::new(),
        };
        let cache = Cache::builder()
            .name("introspection")
            .max_capacity(settings.cache.max_entries)
            .expire_after(CachedLifetime)
            .build();
        let inactive = Cache::builder()
            .name("introspection_inactive")
            .max_capacity(inactive_capacity(settings.cache.max_entries))
            .expire_after(InactiveLifetime(settings.cache.inactive_ttl))
            .build();
        Introspector {
            provider: provider.clone(),
            settings,
            expectations,
            client,
            endpoint,
            discovery: Discovery::default(),
            cache,
            inactive,
            labels: CacheLabels {
                active: format!("introspection/{provider}"),
                inactive: format!("introspection_inactive/{provider}"),
            },
        }
    }

    /// Whether JWTs are introspected after local verification.
    pub(crate) fn introspects_jwts(&self) -> bool {
        self.settings.introspect_jwts
    }

    /// Whether a token naming `issuer` may be sent here: always when no
    /// issuer is configured (the endpoint decides), else only a match.
    pub(crate) fn accepts_issuer(&self, issuer: &str) -> bool {
        self.expectations
            .issuer
            .as_deref()
            .is_none_or(|configured| same_issuer(issuer, configured))
    }

    /// Whether the provider names an issuer.
    pub(crate) fn has_issuer(&self) -> bool {
        self.expectations.issuer.is_some()
    }

    /// Resolves the endpoint, retrying every `retry` until it is known.
    pub(crate) async fn ready(&self, retry: Duration) {
        while let Err(error) = self.endpoint().await {
            tracing::warn!(
                provider = %self.provider,
                error = %ErrorChain(&error),
                retry_in = ?retry,
                "introspection endpoint unknown"
            );
            tokio::time::sleep(retry).await;
        }
    }

    /// The verdict on `token` (whose [`TokenKey`] is `key`): its claims when
    /// the issuer says it is active and the answer passes the provider's own
    /// checks, else why not. The outer error is a fault: no usable answer.
    pub(crate) async fn judge(
        &self,
        token: &str,
        key: TokenKey,
    ) -> Result<Result<Claims, TokenProblem>, IntrospectionFailed> {
        match self.introspect(token, key).await {
            Ok(Introspection::Active(claims)) => Ok(self.validate(&claims).map(|()| claims)),
            Ok(Introspection::Inactive) => Ok(Err(TokenProblem::Inactive)),
            Err(source) => Err(IntrospectionFailed {
                provider: self.provider.clone(),
                source,
            }),
        }
    }

    /// Asks whether `token` (whose [`TokenKey`] is `key`) is active, from
    /// the cache when possible. Concurrent calls for one uncached token
    /// share one request.
    pub(crate) async fn introspect(
        &self,
        token: &str,
        key: TokenKey,
    ) -> Result<Introspection, Arc<IntrospectionError>> {
        let labels = &self.labels;
        if self.inactive.get(&key).await.is_some() {
            crate::metrics::record_cache_lookup(&labels.active, true);
            return Ok(Introspection::Inactive);
        }
        let mut called = false;
        let cached = self
            .cache
            .try_get_with(key, async {
                called = true;
                let started = tokio::time::Instant::now();
                let span = crate::telemetry::introspection_span(&self.provider);
                let answer = self.call(token).instrument(span.clone()).await;
                let outcome = match &answer {
                    Ok(Introspection::Active(_)) => "active",
                    Ok(Introspection::Inactive) => "inactive",
                    Err(_) => "error",
                };
                crate::telemetry::record_call(&span, outcome);
                crate::metrics::record_introspection(&self.provider, outcome, started.elapsed());
                match answer {
                    Ok(Introspection::Inactive) => {
                        self.inactive.insert(key, ()).await;
                        Err(NotCached::Inactive)
                    }
                    Ok(Introspection::Active(claims)) => {
                        let ttl =
                            cache_lifetime(self.settings.cache.ttl, claims.get("exp"), unix_now());
                        Ok(Cached { claims, ttl })
                    }
                    Err(error) => Err(NotCached::Failed(Arc::new(error))),
                }
            })
            .await;
        crate::metrics::record_cache_lookup(&labels.active, !called);
        crate::metrics::set_cache_entries(&labels.active, self.cache.entry_count());
        crate::metrics::set_cache_entries(&labels.inactive, self.inactive.entry_count());
        match cached {
            Ok(cached) => Ok(Introspection::Active(cached.claims)),
            Err(not_cached) => match not_cached.as_ref() {
                NotCached::Inactive => Ok(Introspection::Inactive),
                NotCached::Failed(error) => Err(Arc::clone(error)),
            },
        }
    }

    /// Checks an active answer against the provider: expiry, issuer,
    /// audience and token type. Done on every use, so a cached answer is
    /// judged at the current time.
    pub(crate) fn validate(&self, claims: &Map<String, Value>) -> Result<(), TokenProblem> {
        response::validate(claims, &self.expectations, unix_now())
    }

    /// Entries in the caches, after pending insertions and evictions are
    /// applied.
    #[cfg(test)]
    pub(crate) async fn cached_entries(&self) -> CachedEntries {
        self.cache.run_pending_tasks().await;
        self.inactive.run_pending_tasks().await;
        CachedEntries {
            active: self.cache.entry_count(),
            inactive: self.inactive.entry_count(),
        }
    }

    /// The endpoint: configured, found already, or found now. One attempt
    /// runs at a time; a caller that waited for one gets its outcome.
    async fn endpoint(&self) -> Result<&Url, IntrospectionError> {
        if let Some(endpoint) = self.endpoint.get() {
            return Ok(endpoint);
        }
        let seen = self.discovery.attempts.load(Ordering::Acquire);
        let mut last_failure = self.discovery.gate.lock().await;
        if let Some(endpoint) = self.endpoint.get() {
            return Ok(endpoint);
        }
        if self.discovery.attempts.load(Ordering::Acquire) != seen {
            let reason = last_failure.clone().unwrap_or_default();
            return Err(self.discovery_error(reason));
        }
        let span = crate::telemetry::introspection_discovery_span(&self.provider);
        let found = match &self.settings.endpoint {
            Endpoint::Discovered { issuer } => {
                request::discover(&self.client, issuer, self.settings.timeout, &self.provider)
                    .instrument(span.clone())
                    .await
            }
            // A configured endpoint is set at construction.
            Endpoint::Configured(_) => Err("no endpoint configured".to_owned()),
        };
        crate::telemetry::record_call(&span, if found.is_ok() { "ok" } else { "error" });
        self.discovery.attempts.fetch_add(1, Ordering::Release);
        match found {
            Ok(endpoint) => Ok(self.endpoint.get_or_init(|| endpoint)),
            Err(reason) => {
                *last_failure = Some(reason.clone());
                Err(self.discovery_error(reason))
            }
        }
    }

    /// One call for `token`, once the endpoint is known.
    async fn call(&self, token: &str) -> Result<Introspection, IntrospectionError> {
        let endpoint = self.endpoint().await?;
        request::call(
            &self.client,
            endpoint,
            &self.settings,
            &self.provider,
            token,
        )
        .await
    }

    fn discovery_error(&self, reason: String) -> IntrospectionError {
        let issuer = match &self.settings.endpoint {
            Endpoint::Discovered { issuer } => issuer.clone(),
            Endpoint::Configured(_) => self.provider.to_string(),
        };
        IntrospectionError::Discovery { issuer, reason }
    }
}

/// Entries in an introspector's two caches.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CachedEntries {
    /// Active answers.
    pub(crate) active: u64,
    /// Inactive answers.
    pub(crate) inactive: u64,
}

/// The inactive cache's bound: a [`INACTIVE_SHARE`]th of `max_entries`,
/// at least one entry unless the cache is off.
fn inactive_capacity(max_entries: u64) -> u64 {
    max_entries.div_ceil(INACTIVE_SHARE)
}

/// How long an active answer may be cached: the TTL, cut short by `exp`.
fn cache_lifetime(ttl: Duration, exp: Option<&Value>, now: u64) -> Duration {
    exp.map_or(ttl, |exp| until_exp(ttl, exp, now))
}

#[cfg(test)]
mod tests;
