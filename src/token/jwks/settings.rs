//! What a provider's keys are fetched from, and on what schedule.

use std::time::Duration;

use crate::token::jwk::KeySet;

/// Where a provider's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
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
