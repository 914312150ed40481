//! Signed identity for the upstream: a short-lived JWT tollgate mints per
//! (token, route), signed with its own ES256 or EdDSA key, so an upstream
//! can check with any JWT library that a request came through tollgate.
//! The public keys are served as a JWKS on the admin port.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::claims::unix_now;
use crate::digest::TokenKey;
use crate::outcome::{Caller, Fault, FaultKind};

/// Header the signed identity token goes in unless a route names another.
pub(crate) const DEFAULT_IDENTITY_HEADER: &str = "x-tollgate-identity";

/// Claims tollgate sets itself; a route cannot copy a token claim over them.
pub(crate) const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "sub",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "original_iss",
];

/// The signing key and its public JWK, parsed once from config.
#[derive(Clone)]
pub(crate) struct IdentityKey {
    algorithm: Algorithm,
    kid: String,
    key: EncodingKey,
    public_jwk: Value,
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl IdentityKey {
    /// A PKCS#8 PEM private key for `ES256` (P-256) or `EdDSA` (Ed25519).
    /// Anything else (RSA, HMAC, other curves) is refused: the token is
    /// minted per request, so it should be small and cheap to sign.
    pub(crate) fn from_pem(pem: &[u8], algorithm: &str, kid: &str) -> Result<IdentityKey, String> {
        if kid.is_empty() || kid.chars().any(char::is_control) {
            return Err("`kid` must be non-empty text".to_owned());
        }
        let not_pkcs8 = |e: jsonwebtoken::errors::Error| {
            format!("not a PKCS#8 PEM private key (`BEGIN PRIVATE KEY`) for {algorithm}: {e}")
        };
        let (algorithm, key, jwk) = match algorithm {
            "ES256" => {
                let key = EncodingKey::from_ec_pem(pem).map_err(not_pkcs8)?;
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.inner())
                    .map_err(|e| format!("not a P-256 key, as ES256 needs: {e}"))?;
                // An uncompressed point: 0x04, then x and y of 32 bytes each.
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err("unexpected P-256 public key encoding".to_owned());
                }
                let jwk = json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..]),
                });
                (Algorithm::ES256, key, jwk)
            }
            "EdDSA" => {
                let key = EncodingKey::from_ed_pem(pem).map_err(not_pkcs8)?;
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.inner())
                    .map_err(|e| format!("not an Ed25519 key, as EdDSA needs: {e}"))?;
                let jwk = json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                (Algorithm::EdDSA, key, jwk)
            }
            other => {
                return Err(format!(
                    "`{other}` is not accepted; use ES256 or EdDSA (RSA and HMAC are refused)"
                ));
            }
        };
        let mut public_jwk = jwk;
        if let Value::Object(fields) = &mut public_jwk {
            fields.insert("kid".into(), kid.into());
            fields.insert("alg".into(), format!("{algorithm:?}").into());
            fields.insert("use".into(), "sig".into());
        }
        Ok(IdentityKey {
            algorithm,
            kid: kid.to_owned(),
            key,
            public_jwk,
        })
    }
}

/// The `identity:` section: who signs and how long tokens live.
#[derive(Debug, Clone)]
pub(crate) struct IdentitySettings {
    /// `iss` of minted tokens.
    pub issuer: String,
    /// The signing key.
    pub key: IdentityKey,
    /// From minting to `exp`.
    pub lifetime: Duration,
    /// Most minted tokens kept.
    pub cache_size: u64,
}

/// A route's signed identity: where it goes and for whom.
#[derive(Debug, Clone)]
pub(crate) struct RouteIdentity {
    /// Lower-case header the token is set in.
    pub header: String,
    /// `aud`: the upstream.
    pub audience: String,
    /// Top-level claims copied from the caller's token.
    pub claims: Vec<String>,
}

/// What a minted token says about the caller.
pub(crate) struct Subject<'a> {
    /// The caller's token, hashed: half of the cache key.
    pub key: TokenKey,
    /// The route's name, the other half of the cache key.
    pub route: &'a Arc<str>,
    /// Who called.
    pub caller: &'a Caller,
    /// The caller's verified claims.
    pub claims: &'a Map<String, Value>,
    /// Granted scopes.
    pub scopes: &'a [&'a str],
}

type CacheKey = (TokenKey, Arc<str>);

/// Mints and caches identity tokens.
pub(crate) struct IdentityMinter {
    settings: IdentitySettings,
    header: Header,
    /// Minted token and its `exp`; reused until [`IdentityMinter::reuse_margin`]
    /// before that.
    cache: moka::future::Cache<CacheKey, (Arc<str>, u64)>,
}

/// Why no token could be minted (a bug or a broken key; never the request's fault).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the upstream identity token")]
pub struct MintFailed(#[source] jsonwebtoken::errors::Error);

impl From<MintFailed> for Fault {
    fn from(error: MintFailed) -> Fault {
        Fault::new(FaultKind::IdentitySigning, error)
    }
}

impl IdentityMinter {
    /// A minter with an empty cache.
    pub(crate) fn new(settings: IdentitySettings) -> IdentityMinter {
        let mut header = Header::new(settings.key.algorithm);
        header.kid = Some(settings.key.kid.clone());
        let cache = moka::future::Cache::builder()
            .max_capacity(settings.cache_size)
            // Entries are checked against their own `exp` too; this only
            // frees memory.
            .time_to_live(settings.lifetime)
            .build();
        IdentityMinter {
            settings,
            header,
            cache,
        }
    }

    /// The public keys, as a JWKS document.
    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": [self.settings.key.public_jwk] })
    }

    /// A token for `subject` on `route`, from the cache while it has more
    /// than a quarter of its lifetime left.
    pub(crate) async fn mint(
        &self,
        route: &RouteIdentity,
        subject: &Subject<'_>,
    ) -> Result<Arc<str>, MintFailed> {
        self.mint_at(route, subject, unix_now()).await
    }

    async fn mint_at(
        &self,
        route: &RouteIdentity,
        subject: &Subject<'_>,
        now: u64,
    ) -> Result<Arc<str>, MintFailed> {
        let key = (subject.key, subject.route.clone());
        if let Some((token, expires)) = self.cache.get(&key).await
            && now + self.reuse_margin() < expires
        {
            return Ok(token);
        }
        let (token, expires) = self.sign(route, subject, now)?;
        self.cache.insert(key, (token.clone(), expires)).await;
        Ok(token)
    }

    /// A cached token is re-minted once less than this is left of it.
    fn reuse_margin(&self) -> u64 {
        (self.settings.lifetime.as_secs() / 4).max(1)
    }

    fn sign(
        &self,
        route: &RouteIdentity,
        subject: &Subject<'_>,
        now: u64,
    ) -> Result<(Arc<str>, u64), MintFailed> {
        // Never outlive the caller's own token.
        let mut expires = now + self.settings.lifetime.as_secs();
        // `exp` may be fractional (RFC 7519 NumericDate); any other value
        // than a finite number was refused before a token got this far.
        if let Some(original) = subject
            .claims
            .get("exp")
            .and_then(Value::as_f64)
            .filter(|exp| exp.is_finite())
        {
            // Saturating: a negative or huge `exp` floors or caps, never wraps.
            expires = expires.min(original.floor().max(0.0) as u64);
        }
        let mut claims = Map::new();
        for name in &route.claims {
            if let Some(value) = subject.claims.get(name) {
                claims.insert(name.clone(), value.clone());
            }
        }
        claims.insert("iss".into(), self.settings.issuer.clone().into());
        claims.insert("aud".into(), route.audience.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("exp".into(), expires.into());
        if let Some(sub) = &subject.caller.subject {
            claims.insert("sub".into(), sub.clone().into());
        }
        if let Some(client_id) = &subject.caller.client_id {
            claims.insert("client_id".into(), client_id.clone().into());
        }
        if !subject.scopes.is_empty() {
            claims.insert("scope".into(), subject.scopes.join(" ").into());
        }
        if let Some(issuer) = subject.claims.get("iss") {
            claims.insert("original_iss".into(), issuer.clone());
        }
        let token = jsonwebtoken::encode(&self.header, &claims, &self.settings.key.key)
            .map_err(MintFailed)?;
        Ok((token.into(), expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/keys")
                .join(name),
        )
        .unwrap()
    }

    fn minter(file: &str, algorithm: &str) -> IdentityMinter {
        IdentityMinter::new(IdentitySettings {
            issuer: "https://tollgate.test".into(),
            key: IdentityKey::from_pem(&fixture(file), algorithm, "tg-1").unwrap(),
            lifetime: Duration::from_secs(60),
            cache_size: 100,
        })
    }

    fn route() -> RouteIdentity {
        RouteIdentity {
            header: "x-tollgate-identity".into(),
            audience: "orders".into(),
            claims: vec!["email".into()],
        }
    }

    fn claims() -> Map<String, Value> {
        match json!({"iss": "https://idp", "sub": "alice", "email": "a@x", "exp": 4_000_000_000u64, "secret": "no"})
        {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn caller() -> Caller {
        Caller {
            provider: "idp".into(),
            subject: Some("alice".into()),
            client_id: Some("cli".into()),
        }
    }

    fn verify(minter: &IdentityMinter, token: &str, algorithm: Algorithm) -> Map<String, Value> {
        let jwks: JwkSet = serde_json::from_value(minter.jwks()).unwrap();
        let jwk = jwks.find("tg-1").unwrap();
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&["orders"]);
        validation.set_issuer(&["https://tollgate.test"]);
        jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap()
        .claims
    }

    #[tokio::test]
    async fn minted_tokens_verify_against_the_jwks_with_the_right_claims() {
        for (file, name, algorithm) in [
            ("ec-p256-1.pem", "ES256", Algorithm::ES256),
            ("ed25519.pem", "EdDSA", Algorithm::EdDSA),
        ] {
            let minter = minter(file, name);
            let route_name: Arc<str> = "orders".into();
            let claims = claims();
            let caller = caller();
            let subject = Subject {
                key: TokenKey::of("t1"),
                route: &route_name,
                caller: &caller,
                claims: &claims,
                scopes: &["read", "write"],
            };
            let token = minter.mint(&route(), &subject).await.unwrap();
            let verified = verify(&minter, &token, algorithm);
            assert_eq!(verified["sub"], "alice");
            assert_eq!(verified["client_id"], "cli");
            assert_eq!(verified["scope"], "read write");
            assert_eq!(verified["original_iss"], "https://idp");
            assert_eq!(verified["email"], "a@x");
            assert!(verified.get("secret").is_none(), "only selected claims");
        }
    }

    #[tokio::test]
    async fn the_cache_reuses_per_token_and_route_until_near_expiry() {
        let minter = minter("ec-p256-1.pem", "ES256");
        let claims = claims();
        let caller = caller();
        let (orders, billing): (Arc<str>, Arc<str>) = ("orders".into(), "billing".into());
        let subject = |token, route| Subject {
            key: TokenKey::of(token),
            route,
            caller: &caller,
            claims: &claims,
            scopes: &[],
        };
        let now = 1_000_000;
        let first = minter
            .mint_at(&route(), &subject("t1", &orders), now)
            .await
            .unwrap();
        let again = minter
            .mint_at(&route(), &subject("t1", &orders), now + 30)
            .await
            .unwrap();
        assert_eq!(first, again, "reused within its lifetime");
        let other_route = minter
            .mint_at(&route(), &subject("t1", &billing), now)
            .await
            .unwrap();
        let other_token = minter
            .mint_at(&route(), &subject("t2", &orders), now)
            .await
            .unwrap();
        assert_ne!(first, other_route);
        assert_ne!(first, other_token);
        // 15 s (a quarter of 60 s) before `exp`, a fresh one is minted.
        let renewed = minter
            .mint_at(&route(), &subject("t1", &orders), now + 45)
            .await
            .unwrap();
        assert_ne!(first, renewed);
    }

    #[tokio::test]
    async fn never_outlives_the_callers_token() {
        let minter = minter("ec-p256-1.pem", "ES256");
        let mut claims = claims();
        claims.insert("exp".into(), 1_000_010.into());
        let caller = caller();
        let route_name: Arc<str> = "orders".into();
        let subject = Subject {
            key: TokenKey::of("t1"),
            route: &route_name,
            caller: &caller,
            claims: &claims,
            scopes: &[],
        };
        let (_, expires) = minter.sign(&route(), &subject, 1_000_000).unwrap();
        assert_eq!(expires, 1_000_010);
        // A fractional NumericDate caps the lifetime too, rounded down.
        let mut fractional = claims.clone();
        fractional.insert("exp".into(), 1_000_010.5.into());
        let subject = Subject {
            claims: &fractional,
            ..subject
        };
        let (_, expires) = minter.sign(&route(), &subject, 1_000_000).unwrap();
        assert_eq!(expires, 1_000_010);
    }

    #[test]
    fn refuses_rsa_hmac_and_other_curves() {
        let rsa = fixture("rsa-2048.pem");
        assert!(IdentityKey::from_pem(&rsa, "RS256", "k").is_err());
        assert!(IdentityKey::from_pem(&rsa, "ES256", "k").is_err());
        assert!(IdentityKey::from_pem(b"secret", "HS256", "k").is_err());
        let p384 = fixture("ec-p384.pem");
        assert!(IdentityKey::from_pem(&p384, "ES256", "k").is_err());
        let ec = fixture("ec-p256-1.pem");
        assert!(IdentityKey::from_pem(&ec, "EdDSA", "k").is_err());
        assert!(IdentityKey::from_pem(&ec, "ES256", "").is_err());
    }
}
