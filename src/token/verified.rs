//! Verified JWTs, remembered by a hash of the token so a repeat caller pays
//! for no signature check. An entry never outlives the token's `exp` nor
//! the key set that verified it: once a fetch brings a different JWKS
//! document (a rotation), the token is verified again; a refresh that
//! brings the same document keeps the entries.

use std::sync::{Arc, Weak};
use std::time::Duration;

use moka::sync::Cache;
use serde_json::Value;

use super::jwk::KeySet;
use super::jwt::JwtProvider;
use super::provider::ProviderId;
use crate::claims::{Claims, unix_now, until_exp};
use crate::digest::TokenKey;

/// Size and lifetime of the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VerifiedCacheSettings {
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
pub(crate) struct VerifiedJwt {
    /// The provider that verified it.
    pub(crate) provider: ProviderId,
    /// The verifier that did, so that a remembered verification stands only
    /// while that very verifier (its issuer, audiences, algorithms and
    /// secret) is the provider's: a reload that changes the provider, or
    /// gives its id to another, makes the entry a miss. Weak, so the cache
    /// keeps no replaced verifier alive; it still holds the allocation, so
    /// no new verifier can take its address.
    pub(crate) verifier: Weak<JwtProvider>,
    /// Its payload.
    pub(crate) claims: Claims,
    /// The key set it verified against (`None`: HMAC). Held, not compared
    /// by address alone, so a freed set's address cannot be mistaken.
    pub(crate) keys: Option<Arc<KeySet>>,
    /// The `kid` of its header, for audit records of later hits.
    pub(crate) kid: Option<Arc<str>>,
}

impl VerifiedJwt {
    /// Whether `current` is the verifier that verified this token.
    pub(crate) fn verified_by(&self, current: &Arc<JwtProvider>) -> bool {
        std::ptr::eq(self.verifier.as_ptr(), Arc::as_ptr(current))
    }
}

/// An entry: the verification, and how long it may be remembered.
type Entry = (Arc<VerifiedJwt>, Duration);

struct Lifetime;

impl moka::Expiry<TokenKey, Entry> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &TokenKey,
        (_, lifetime): &Entry,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(*lifetime)
    }
}

/// The `cache` label of this cache's metrics.
const METRICS_NAME: &str = "verified_jwt";

/// The cache; cheap to clone.
#[derive(Clone)]
pub(crate) struct VerifiedCache {
    cache: Option<Cache<TokenKey, Entry>>,
    ttl: Duration,
}

impl VerifiedCache {
    /// A cache as configured; `max_entries: 0` or `ttl: 0s` turns it off.
    pub(crate) fn new(settings: &VerifiedCacheSettings) -> VerifiedCache {
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
    /// `usable` says it still stands; counted as a hit. An entry that is
    /// stale (the keys changed) or refused here costs the caller a
    /// verification, which the caller counts with [`VerifiedCache::missed`].
    pub(crate) fn get(
        &self,
        key: &TokenKey,
        usable: impl FnOnce(&VerifiedJwt) -> bool,
    ) -> Option<Arc<VerifiedJwt>> {
        let (found, _) = self
            .cache
            .as_ref()?
            .get(key)
            .filter(|(hit, _)| usable(hit))?;
        crate::metrics::record_cache_lookup(METRICS_NAME, true);
        Some(found)
    }

    /// Counts a miss: a JWT verified with its provider's keys because no
    /// usable verification was remembered. Opaque tokens, and JWTs refused
    /// before verification, are no misses of this cache.
    pub(crate) fn missed(&self) {
        if self.cache.is_some() {
            crate::metrics::record_cache_lookup(METRICS_NAME, false);
        }
    }

    /// Remembers a verification until the token's `exp` or the TTL,
    /// whichever is first. A token without a numeric `exp` is not kept.
    pub(crate) fn insert(&self, key: TokenKey, verified: VerifiedJwt) {
        let Some(cache) = &self.cache else {
            return;
        };
        let Some(lifetime) = lifetime(self.ttl, verified.claims.get("exp"), unix_now()) else {
            return;
        };
        cache.insert(key, (Arc::new(verified), lifetime));
        // Inserts follow a full signature check, so applying moka's pending
        // work here for an exact gauge costs little in comparison.
        crate::metrics::set_cache_entries(METRICS_NAME, self.entries());
    }

    /// Entries held, after pending work is applied (for metrics and tests).
    pub(crate) fn entries(&self) -> u64 {
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

    fn verification(provider: usize, exp: Value) -> VerifiedJwt {
        let mut claims = serde_json::Map::new();
        claims.insert("exp".into(), exp);
        VerifiedJwt {
            provider: ProviderId(provider),
            verifier: Weak::new(),
            claims: Arc::new(claims),
            keys: None,
            kid: None,
        }
    }

    fn key(byte: u8) -> TokenKey {
        TokenKey::of(&byte.to_string())
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
        cache.insert(key(1), verification(2, exp.clone()));
        let hit = cache.get(&key(1), |_| true).expect("remembered");
        assert_eq!(hit.provider, ProviderId(2));
        assert!(
            cache.get(&key(1), |_| false).is_none(),
            "refused by the caller"
        );
        assert!(cache.get(&key(2), |_| true).is_none());
        for i in 0..100u8 {
            cache.insert(key(i), verification(0, exp.clone()));
        }
        assert!(cache.entries() <= 10, "bounded: {}", cache.entries());
    }

    #[test]
    fn expired_tokens_are_not_kept_and_a_zero_size_cache_is_off() {
        let cache = VerifiedCache::new(&VerifiedCacheSettings::default());
        cache.insert(key(1), verification(0, json!(unix_now() - 1)));
        assert!(cache.get(&key(1), |_| true).is_none());
        let off = VerifiedCache::new(&VerifiedCacheSettings {
            max_entries: 0,
            ..VerifiedCacheSettings::default()
        });
        off.insert(key(1), verification(0, json!(unix_now() + 600)));
        assert!(off.get(&key(1), |_| true).is_none());
    }
}
