//! Who vouches for a token: the verified-JWT cache, local JWT verification
//! by the provider that has keys for the token's issuer, or the route's
//! introspection provider for everything else. Faults (an IdP that cannot
//! answer) are the outer error.

use std::sync::Arc;

use super::providers::Providers;
use super::settings::RoutePolicy;
use crate::audit::Evidence;
use crate::claims::Claims;
use crate::digest::TokenKey;
use crate::outcome::{Fault, TokenProblem};
use crate::token::introspection::Introspector;
use crate::token::jwt;
use crate::token::provider::Provider;
use crate::token::verified::{VerifiedCache, VerifiedJwt};

/// A token's verdict: the provider that vouched for it and its claims, or
/// why it is refused.
pub(crate) type Verdict<'a> = Result<(&'a Provider, Claims), TokenProblem>;

/// Finds who vouches for `token` (whose [`TokenKey`] is `key`) on `route`.
/// A JWS goes to the provider with keys for its issuer; anything else (an
/// opaque token, or a JWS no provider has keys for) to the route's
/// introspection provider. What it learns on the way (the key id, a cache
/// hit, the claims) goes into `evidence`, for the audit record.
pub(crate) async fn verify<'a>(
    providers: &'a Providers,
    verified: &VerifiedCache,
    route: &RoutePolicy,
    token: &str,
    key: TokenKey,
    evidence: &mut Evidence,
) -> Result<Verdict<'a>, Fault> {
    // A route that does not accept the provider takes the long way, which
    // names the reason.
    let usable = |hit: &VerifiedJwt| {
        route.accepts(hit.provider)
            && providers
                .get(hit.provider)
                .and_then(Provider::jwt)
                .is_some_and(|jwt| hit.verified_by(jwt) && jwt.keys_unchanged(hit.keys.as_ref()))
    };
    if let Some(hit) = verified.get(&key, usable)
        && let Some(provider) = providers.get(hit.provider)
    {
        evidence.cache_hit = Some(true);
        evidence.key_id.clone_from(&hit.kid);
        evidence.claims = Some(Arc::clone(&hit.claims));
        return Ok(Ok((provider, Arc::clone(&hit.claims))));
    }
    let unverified = match jwt::peek(token) {
        Ok(unverified) => unverified,
        // Not a JWS at all: an opaque token, if the route introspects. A JWS
        // refused for its header (`crit`, bad JSON) is not opaque: it names
        // an issuer the introspector may not be.
        Err(TokenProblem::Malformed) if !jwt::is_jws_shaped(token) => {
            return match route_introspector(providers, route, Sent::Opaque) {
                Some((provider, introspector)) => Ok(introspector
                    .judge(token, key)
                    .await?
                    .map(|claims| (provider, claims))),
                None => Ok(Err(TokenProblem::Malformed)),
            };
        }
        // A JWS with a refused header (`alg: none`, `crit`): never sent on.
        Err(problem) => return Ok(Err(problem)),
    };
    let issuer = unverified.issuer.as_deref();
    let Some((id, verifier)) = issuer.and_then(|issuer| providers.for_issuer(issuer)) else {
        return match route_introspector(providers, route, Sent::Jws(issuer)) {
            Some((provider, introspector)) => Ok(introspector
                .judge(token, key)
                .await?
                .map(|claims| (provider, claims))),
            None if issuer.is_none() => Ok(Err(TokenProblem::InvalidClaims)),
            None => Ok(Err(TokenProblem::UnknownIssuer)),
        };
    };
    let Some(provider) = providers.get(id).filter(|_| route.accepts(id)) else {
        return Ok(Err(TokenProblem::IssuerNotAllowed));
    };
    verified.missed();
    evidence.cache_hit = Some(false);
    // Shared with the cache entry, so a later hit names it without a copy.
    let kid: Option<Arc<str>> = unverified.kid.as_deref().map(Arc::from);
    evidence.key_id.clone_from(&kid);
    let jwt = match verifier.verify(token, &unverified).await? {
        Ok(verified) => verified,
        Err(problem) => return Ok(Err(problem)),
    };
    let claims = Arc::new(jwt.claims);
    match provider.introspection() {
        // Revocation check: the JWT verified, and the issuer must agree it
        // is still active (its own cache bounds the calls). Its own claims
        // stay the ones that count.
        Some(introspector) if introspector.introspects_jwts() => {
            if let Err(problem) = introspector.judge(token, key).await? {
                return Ok(Err(problem));
            }
        }
        _ => verified.insert(
            key,
            VerifiedJwt {
                provider: id,
                verifier: Arc::downgrade(verifier),
                claims: Arc::clone(&claims),
                keys: jwt.keys,
                kid,
            },
        ),
    }
    evidence.claims = Some(Arc::clone(&claims));
    Ok(Ok((provider, claims)))
}

/// What kind of token would be sent to an introspection endpoint.
#[derive(Clone, Copy)]
enum Sent<'a> {
    /// Not a JWS: only the issuer can tell.
    Opaque,
    /// A JWS no provider has keys for, naming this issuer (or none).
    Jws(Option<&'a str>),
}

/// The route's introspection provider (config allows at most one), if it
/// may receive `token`.
fn route_introspector<'a>(
    providers: &'a Providers,
    route: &RoutePolicy,
    token: Sent<'_>,
) -> Option<(&'a Provider, &'a Introspector)> {
    route
        .providers
        .iter()
        .filter_map(|&id| providers.get(id))
        .find_map(|provider| provider.introspection().map(|i| (provider, i)))
        .filter(|(_, introspector)| match token {
            Sent::Opaque => true,
            Sent::Jws(Some(issuer)) => introspector.accepts_issuer(issuer),
            // A JWS naming no issuer goes only where no issuer is set.
            Sent::Jws(None) => !introspector.has_issuer(),
        })
}
