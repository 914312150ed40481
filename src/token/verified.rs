//! Verified JWTs, remembered by a hash of the token so a repeat caller pays
//! for no signature check. An entry never outlives the token's `exp` nor
//! the key set that verified it: once a fetch brings a different JWKS
//! document (a rotation), the token is verified again; a refresh that
//! brings the same document keeps the entries.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use serde_json::{Map, Value};

use super::jwk::KeySet;
use super::{unix_now, until_exp};

/// Size and lifetime of the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCacheSettings {
    /// Most entries kept (default 100,000); 0 turns the cache off.
    pub max_entries: u64,
    /// Longest an entry is kept (default 5 min); never past `exp`.
    pub ttl: Duration,
}

impl Default for VerifiedCacheSettings {
    fn default() -> Self {
        VerifiedCacheSettings {
            max_entries: 100_000,
            ttl: Duration::from_secs(5 * 60),
        }
    }
}

/// A JWT that verified.
pub struct VerifiedJwt {
    /// Index of the provider that verified it.
    pub provider: usize,
    /// Its payload.
    pub claims: Arc<Map<String, Value>>,
    /// The key set it verified against (`None`: HMAC). Held, not compared
    /// by address alone, so a freed set's address cannot be mistaken.
    pub keys: Option<Arc<KeySet>>,
    lifetime: Duration,
}

struct Lifetime;

impl moka::Expiry<[u8; 32], Arc<VerifiedJwt>> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<VerifiedJwt>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.lifetime)
    }
}

/// The `cache` label of this cache's metrics.
const METRICS_NAME: &str = "verified_jwt";

/// The cache; cheap to clone.
#[derive(Clone)]
pub struct VerifiedCache {
    cache: Option<Cache<[u8; 32], Arc<VerifiedJwt>>>,
    ttl: Duration,
}

impl VerifiedCache {
    /// A cache as configured; `max_entries: 0` or `ttl: 0s` turns it off.
    pub fn new(settings: &VerifiedCacheSettings) -> VerifiedCache {
        let cache = (settings.max_entries > 0 && !settings.ttl.is_zero()).then(|| {
            Cache::builder()
                .name(METRICS_NAME)
                .max_capacity(settings.max_entries)
                .expire_after(Lifetime)
                .build()
        });
        VerifiedCache {
            cache,
            ttl: settings.ttl,
        }
    }

    /// The remembered verification for the token with this key, if
    /// `usable` says it still stands. Only such an answer counts as a hit:
    /// an entry that is stale (the keys changed) or refused here costs the
    /// caller a verification like a miss.
    pub fn get(
        &self,
        key: &[u8; 32],
        usable: impl FnOnce(&VerifiedJwt) -> bool,
    ) -> Option<Arc<VerifiedJwt>> {
        let found = self.cache.as_ref()?.get(key).filter(|hit| usable(hit));
        crate::metrics::record_cache_lookup(METRICS_NAME, found.is_some());
        found
    }

    /// Remembers a verification until the token's `exp` or the TTL,
    /// whichever is first. A token without a numeric `exp` is not kept.
    pub fn insert(
        &self,
        key: [u8; 32],
        provider: usize,
        claims: Arc<Map<String, Value>>,
        keys: Option<Arc<KeySet>>,
    ) {
        let Some(cache) = &self.cache else {
            return;
        };
        let Some(lifetime) = lifetime(self.ttl, claims.get("exp"), unix_now()) else {
            return;
        };
        cache.insert(
            key,
            Arc::new(VerifiedJwt {
                provider,
                claims,
                keys,
                lifetime,
            }),
        );
        // Inserts follow a full signature check, so applying moka's pending
        // work here for an exact gauge costs little in comparison.
        crate::metrics::set_cache_entries(METRICS_NAME, self.entries());
    }

    /// Entries held, after pending work is applied (for metrics and tests).
    pub fn entries(&self) -> u64 {
        self.cache.as_ref().map_or(0, |cache| {
            cache.run_pending_tasks();
            cache.entry_count()
        })
    }
}

/// How long an entry may live: until `exp`, at most `ttl`. `None` when the
/// token is (about to be) expired or `exp` is not a number.
fn lifetime(ttl: Duration, exp: Option<&Value>, now: u64) -> Option<Duration> {
    Some(until_exp(ttl, exp?, now)).filter(|left| *left >= Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(exp: Value) -> Arc<Map<String, Value>> {
        let mut map = Map::new();
        map.insert("exp".into(), exp);
        Arc::new(map)
    }

    #[test]
    fn entries_never_outlive_exp() {
        let ttl = Duration::from_secs(300);
        let now = 1_000_000;
        assert_eq!(
            lifetime(ttl, Some(&json!(now + 60)), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(lifetime(ttl, Some(&json!(now + 6000)), now), Some(ttl));
        assert_eq!(lifetime(ttl, Some(&json!(now)), now), None);
        assert_eq!(lifetime(ttl, Some(&json!(now - 5)), now), None);
        assert_eq!(lifetime(ttl, Some(&json!("later")), now), None);
        assert_eq!(lifetime(ttl, None, now), None);
    }

    #[test]
    fn remembers_until_told_otherwise_and_is_bounded() {
        let cache = VerifiedCache::new(&VerifiedCacheSettings {
            max_entries: 10,
            ttl: Duration::from_secs(60),
        });
        let exp = json!(unix_now() + 600);
        cache.insert([1; 32], 2, claims(exp.clone()), None);
        let hit = cache.get(&[1; 32], |_| true).expect("remembered");
        assert_eq!(hit.provider, 2);
        assert!(
            cache.get(&[1; 32], |_| false).is_none(),
            "refused by the caller"
        );
        assert!(cache.get(&[2; 32], |_| true).is_none());
        for i in 0..100u8 {
            cache.insert([i; 32], 0, claims(exp.clone()), None);
        }
        assert!(cache.entries() <= 10, "bounded: {}", cache.entries());
    }

    #[test]
    fn expired_tokens_are_not_kept_and_a_zero_size_cache_is_off() {
        let cache = VerifiedCache::new(&VerifiedCacheSettings::default());
        cache.insert([1; 32], 0, claims(json!(unix_now() - 1)), None);
        assert!(cache.get(&[1; 32], |_| true).is_none());
        let off = VerifiedCache::new(&VerifiedCacheSettings {
            max_entries: 0,
            ..VerifiedCacheSettings::default()
        });
        off.insert([1; 32], 0, claims(json!(unix_now() + 600)), None);
        assert!(off.get(&[1; 32], |_| true).is_none());
    }
}
