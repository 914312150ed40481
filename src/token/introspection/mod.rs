//! RFC 7662 token introspection: asking the issuer whether an opaque token
//! is active, with the answers cached by a hash of the token.
//!
//! One [`Introspector`] per provider. The endpoint is configured or found in
//! the issuer's metadata (OIDC Discovery, else RFC 8414). Results are cached
//! for at most the configured TTL and never past the token's `exp`; inactive
//! answers briefly; concurrent checks of one uncached token share one call.
//! An endpoint that cannot answer is a fault, never an allow.

mod response;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use moka::future::Cache;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tracing::Instrument as _;

pub use response::{Introspection, ResponseError};

use super::fetch::{ReadError, display_url, read_capped, same_issuer};
use super::jwks::check_key_url;
use super::{TokenProblem, token_key, unix_now, until_exp};
use crate::config::Secret;

/// Introspection answers and metadata documents are small; this bounds what
/// a broken or hostile endpoint can make tollgate buffer.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Where the introspection endpoint is.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// Configured explicitly.
    Configured(Url),
    /// `introspection_endpoint` from the issuer's metadata.
    Discovered {
        /// The configured issuer, which the metadata must repeat.
        issuer: String,
    },
}

/// How tollgate authenticates to the introspection endpoint (RFC 6749 §2.3).
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded client id and secret.
    ClientSecretBasic {
        /// The client id.
        client_id: String,
        /// The client secret.
        secret: Secret,
    },
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost {
        /// The client id.
        client_id: String,
        /// The client secret.
        secret: Secret,
    },
    /// No client credentials; the configured headers authenticate, if any.
    None,
}

/// Lifetimes and size of the result cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// Longest an active result is kept (default 60 s, so a revocation
    /// takes effect within a minute); never past `exp`.
    pub ttl: Duration,
    /// How long an inactive result is kept (default 5 s), so a flood of
    /// one bad token does not become a flood of calls.
    pub inactive_ttl: Duration,
    /// Most entries kept (default 100,000).
    pub max_entries: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl: Duration::from_secs(60),
            inactive_ttl: Duration::from_secs(5),
            max_entries: 100_000,
        }
    }
}

/// One provider's introspection, as configured.
#[derive(Clone, Debug)]
pub struct IntrospectionSettings {
    /// Where to send tokens.
    pub endpoint: Endpoint,
    /// How to authenticate.
    pub client_auth: ClientAuth,
    /// Extra request headers; secret values are marked sensitive.
    pub headers: HeaderMap,
    /// Introspect JWTs too, after verifying them locally (revocation).
    pub introspect_jwts: bool,
    /// Total time for one call, connect and body included (default 800 ms).
    pub timeout: Duration,
    /// Time to establish a connection (default 500 ms).
    pub connect_timeout: Duration,
    /// The result cache.
    pub cache: CacheSettings,
}

/// What the checks of an active result need from the provider.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    /// The configured issuer; when set, a reported `iss` must match it.
    pub issuer: Option<String>,
    /// Accepted audiences; when set, `aud` must name one.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

/// Introspection could not give an answer: a fault for the check.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    /// The metadata document could not be had or names no endpoint.
    #[error("cannot find the introspection endpoint of {issuer}: {reason}")]
    Discovery {
        /// The issuer whose metadata was read.
        issuer: String,
        /// What went wrong.
        reason: String,
    },
    /// Connect, TLS, timeout or a broken body.
    #[error("calling {uri} failed")]
    Http {
        /// The endpoint, without credentials.
        uri: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// A status other than 200.
    #[error("{uri} answered HTTP {status}")]
    Status {
        /// The endpoint, without credentials.
        uri: String,
        /// The status received.
        status: StatusCode,
    },
    /// The body exceeded the size cap.
    #[error("{uri} sent more than {MAX_BODY_BYTES} bytes")]
    TooLarge {
        /// The endpoint, without credentials.
        uri: String,
    },
    /// The body is not an RFC 7662 response.
    #[error("{uri} did not return an introspection response")]
    Response {
        /// The endpoint, without credentials.
        uri: String,
        /// What is wrong with it.
        #[source]
        source: ResponseError,
    },
}

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

impl moka::Expiry<[u8; 32], ()> for InactiveLifetime {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        _value: &(),
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.0)
    }
}

struct CachedLifetime;

impl moka::Expiry<[u8; 32], Cached> for CachedLifetime {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Cached,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Introspects tokens for one provider. Cheap to share behind an `Arc`.
pub struct Introspector {
    provider: Arc<str>,
    settings: IntrospectionSettings,
    expectations: Expectations,
    client: reqwest::Client,
    endpoint: OnceLock<Url>,
    discovery: Discovery,
    /// Active answers.
    cache: Cache<[u8; 32], Cached>,
    /// Inactive answers, bounded apart (see [`INACTIVE_SHARE`]).
    inactive: Cache<[u8; 32], ()>,
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
    pub fn new(
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
            provider,
            settings,
            expectations,
            client,
            endpoint,
            discovery: Discovery::default(),
            cache,
            inactive,
        }
    }

    /// The provider's name.
    pub fn provider(&self) -> &Arc<str> {
        &self.provider
    }

    /// Whether JWTs are introspected after local verification.
    pub fn introspects_jwts(&self) -> bool {
        self.settings.introspect_jwts
    }

    /// Whether a token naming `issuer` may be sent here: always when no
    /// issuer is configured (the endpoint decides), else only a match.
    pub fn accepts_issuer(&self, issuer: &str) -> bool {
        self.expectations
            .issuer
            .as_deref()
            .is_none_or(|configured| same_issuer(issuer, configured))
    }

    /// Whether the provider names an issuer.
    pub fn has_issuer(&self) -> bool {
        self.expectations.issuer.is_some()
    }

    /// Resolves the endpoint, retrying every `retry` until it is known.
    pub async fn ready(&self, retry: Duration) {
        while let Err(error) = self.endpoint().await {
            tracing::warn!(
                provider = %self.provider,
                error = %crate::telemetry::ErrorChain(&error),
                retry_in = ?retry,
                "introspection endpoint unknown"
            );
            tokio::time::sleep(retry).await;
        }
    }

    /// Asks whether `token` is active, from the cache when possible.
    /// Concurrent calls for one uncached token share one request.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, Arc<IntrospectionError>> {
        self.introspect_hashed(token, token_key(token)).await
    }

    /// [`Introspector::introspect`] for a caller that has hashed the token
    /// already: `key` must be [`token_key`] of `token`.
    pub async fn introspect_hashed(
        &self,
        token: &str,
        key: [u8; 32],
    ) -> Result<Introspection, Arc<IntrospectionError>> {
        // One cache per provider, so the labels name both; provider names
        // are configured, so the set stays bounded.
        let cache = format!("introspection/{}", self.provider);
        if self.inactive.get(&key).await.is_some() {
            crate::metrics::record_cache_lookup(&cache, true);
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
        crate::metrics::record_cache_lookup(&cache, !called);
        crate::metrics::set_cache_entries(&cache, self.cache.entry_count());
        crate::metrics::set_cache_entries(
            &format!("introspection_inactive/{}", self.provider),
            self.inactive.entry_count(),
        );
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
    pub fn validate(&self, claims: &Map<String, Value>) -> Result<(), TokenProblem> {
        response::validate(claims, &self.expectations, unix_now())
    }

    /// Entries in the cache, for metrics and tests, after pending
    /// insertions and evictions are applied.
    pub async fn cached_entries(&self) -> CachedEntries {
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
        let found = self.discover().instrument(span.clone()).await;
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

    async fn call(&self, token: &str) -> Result<Introspection, IntrospectionError> {
        let endpoint = self.endpoint().await?;
        let uri = display_url(endpoint);
        let http_error = |source: reqwest::Error| IntrospectionError::Http {
            uri: uri.clone(),
            source: source.without_url(),
        };
        let mut form: Vec<(&str, &[u8])> = vec![
            ("token", token.as_bytes()),
            ("token_type_hint", b"access_token"),
        ];
        let mut request = self
            .client
            .post(endpoint.clone())
            .timeout(self.settings.timeout)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        match &self.settings.client_auth {
            ClientAuth::ClientSecretBasic { client_id, secret } => {
                request = request.header(AUTHORIZATION, basic_credentials(client_id, secret));
            }
            ClientAuth::ClientSecretPost { client_id, secret } => {
                form.push(("client_id", client_id.as_bytes()));
                form.push(("client_secret", secret.expose()));
            }
            ClientAuth::None => {}
        }
        for (name, value) in &self.settings.headers {
            request = request.header(name, value.clone());
        }
        let started = tokio::time::Instant::now();
        let mut response = request
            .body(encode_form(&form))
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(IntrospectionError::Status { uri, status });
        }
        let body =
            read_capped(&mut response, MAX_BODY_BYTES)
                .await
                .map_err(|error| match error {
                    ReadError::Http(source) => http_error(source),
                    ReadError::TooLarge => IntrospectionError::TooLarge { uri: uri.clone() },
                })?;
        let answer = Introspection::parse(&body)
            .map_err(|source| IntrospectionError::Response { uri, source })?;
        tracing::debug!(
            provider = %self.provider,
            active = matches!(answer, Introspection::Active(_)),
            elapsed = ?started.elapsed(),
            "introspected"
        );
        Ok(answer)
    }

    /// Reads `introspection_endpoint` from OIDC Discovery, falling back to
    /// RFC 8414 authorization server metadata; why not, when it fails.
    async fn discover(&self) -> Result<Url, String> {
        let Endpoint::Discovered { issuer } = &self.settings.endpoint else {
            // A configured endpoint is set at construction.
            return Err("no endpoint configured".to_owned());
        };
        let mut reasons = Vec::new();
        for uri in metadata_urls(issuer) {
            match self.metadata(&uri, issuer).await {
                Ok(endpoint) => {
                    tracing::info!(
                        provider = %self.provider,
                        endpoint = %display_url(&endpoint),
                        "discovered introspection endpoint"
                    );
                    return Ok(endpoint);
                }
                Err(reason) => reasons.push(reason),
            }
        }
        Err(reasons.join("; "))
    }

    async fn metadata(&self, uri: &Url, issuer: &str) -> Result<Url, String> {
        #[derive(Deserialize)]
        struct Metadata {
            issuer: String,
            introspection_endpoint: Option<String>,
        }
        let shown = display_url(uri);
        let mut response = self
            .client
            .get(uri.clone())
            .timeout(self.settings.timeout)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{shown}: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("{shown} answered HTTP {}", response.status()));
        }
        let body = read_capped(&mut response, MAX_BODY_BYTES)
            .await
            .map_err(|_| format!("{shown}: the body could not be read within the limit"))?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| format!("{shown} is not a metadata document: {e}"))?;
        if !same_issuer(&metadata.issuer, issuer) {
            return Err(format!(
                "{shown} names issuer {:?}, not {issuer:?}",
                metadata.issuer
            ));
        }
        let endpoint = metadata
            .introspection_endpoint
            .ok_or_else(|| format!("{shown} names no introspection_endpoint"))?;
        let endpoint = Url::parse(&endpoint)
            .map_err(|e| format!("{shown}: introspection_endpoint is not a URL: {e}"))?;
        check_key_url(&endpoint, Some(uri)).map_err(|reason| format!("{shown}: {reason}"))?;
        Ok(endpoint)
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedEntries {
    /// Active answers.
    pub active: u64,
    /// Inactive answers.
    pub inactive: u64,
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

/// OIDC Discovery's URL, then RFC 8414's (the well-known segment goes
/// between host and path).
fn metadata_urls(issuer: &str) -> Vec<Url> {
    let mut urls = Vec::with_capacity(2);
    let base = issuer.trim_end_matches('/');
    if let Ok(url) = Url::parse(&format!("{base}/.well-known/openid-configuration")) {
        urls.push(url);
    }
    if let Ok(mut url) = Url::parse(base) {
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        urls.push(url);
    }
    urls
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1),
/// marked sensitive so it is never logged.
fn basic_credentials(client_id: &str, secret: &Secret) -> HeaderValue {
    let mut pair = form_component(client_id.as_bytes());
    pair.push(':');
    pair.push_str(&form_component(secret.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair)))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

/// `application/x-www-form-urlencoded` body; values are bytes, so a
/// secret that is not UTF-8 is sent as it is.
fn encode_form(pairs: &[(&str, &[u8])]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                form_component(name.as_bytes()),
                form_component(value)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One form-urlencoded component (WHATWG URL, `application/x-www-form-urlencoded`).
fn form_component(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
