//! One provider's introspection as configured: where, how tollgate
//! authenticates, extra headers, timeouts and the result cache.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderMap;

use crate::secret::Secret;

/// Where the introspection endpoint is.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
