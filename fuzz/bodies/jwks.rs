//! Fuzz body: a JWKS document as an IdP (or an attacker in its place)
//! might publish it, through `KeySet::from_json`.
//!
//! Invariants: no panic; at most 100 keys; every loaded key allows at
//! least one algorithm and only asymmetric ones (a JWKS never yields an
//! HMAC key); loaded plus skipped keys account for every entry.

use jsonwebtoken::Algorithm;
use tollgate::internals::KeySet;

/// Every algorithm jsonwebtoken knows, HMAC included.
const ALGORITHMS: &str = "HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA";

pub(crate) fn run(data: &[u8]) {
    let Ok((keys, skipped)) = KeySet::from_json(data) else {
        return;
    };
    assert!(keys.len() <= 100, "{} keys loaded", keys.len());
    let entries = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|document| document.get("keys")?.as_array().map(Vec::len));
    assert_eq!(
        Some(keys.len() + skipped.len()),
        entries,
        "loaded and skipped keys must account for every entry"
    );
    let mut usable = 0;
    for algorithm in ALGORITHMS
        .split(' ')
        .filter_map(|a| a.parse::<Algorithm>().ok())
    {
        let candidates = keys.candidates(None, algorithm).count();
        if matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            assert_eq!(candidates, 0, "a JWKS key verifies {algorithm:?}");
        }
        for key in keys.candidates(None, algorithm) {
            assert!(key.algorithms.contains(&algorithm));
            if let Some(kid) = &key.kid {
                assert!(keys.contains_kid(kid));
                assert!(keys.candidates(Some(kid), algorithm).count() >= 1);
            }
        }
        usable = usable.max(candidates);
    }
    assert!(
        keys.is_empty() || usable > 0,
        "a loaded key allows no algorithm"
    );
}
