//! Who vouches for a token: the verified-JWT cache, local JWT verification
//! for a provider with keys, or the route's introspection provider for
//! everything else. Faults (an IdP that cannot answer) are the outer error.

use std::sync::Arc;

use super::{Authorizer, Claims, Fault, IntrospectionFailed};
use crate::config::RoutePolicy;
use crate::token::introspection::{Introspection, Introspector};
use crate::token::provider::Provider;
use crate::token::verified::VerifiedJwt;
use crate::token::{TokenProblem, jwt, token_key};

/// A token's verdict: the provider that vouched for it and its claims, or
/// why it is refused. Faults (an IdP that cannot answer) are the outer error.
type Verdict<'a> = Result<(&'a Provider, Claims), TokenProblem>;

impl Authorizer {
    /// Finds who vouches for the token. A JWS goes to the provider with
    /// keys for its issuer; anything else (an opaque token, or a JWS no
    /// provider has keys for) to the route's introspection provider.
    pub(super) async fn verify<'a>(
        &'a self,
        route: &RoutePolicy,
        token: &str,
    ) -> Result<Verdict<'a>, Fault> {
        if token.len() > self.max_token_bytes {
            return Ok(Err(TokenProblem::TooLong));
        }
        // Hashed once: the verified-JWT and introspection caches share it.
        let key = token_key(token);
        // A route that does not accept the provider takes the long way,
        // which names the reason.
        let usable = |hit: &VerifiedJwt| {
            route.providers.contains(&hit.provider)
                && self.providers[hit.provider]
                    .jwt()
                    .is_some_and(|jwt| jwt.keys_unchanged(hit.keys.as_ref()))
        };
        if let Some(hit) = self.verified.get(&key, usable) {
            return Ok(Ok((&self.providers[hit.provider], Arc::clone(&hit.claims))));
        }
        let unverified = match jwt::peek(token) {
            Ok(unverified) => unverified,
            // Not a JWS at all: an opaque token, if the route introspects.
            // A JWS refused for its header (`crit`, bad JSON) is not opaque:
            // it names an issuer the introspector may not be.
            Err(TokenProblem::Malformed) if !jwt::is_jws_shaped(token) => {
                return match self.route_introspector(route, Sent::Opaque) {
                    Some((provider, introspector)) => Ok(introspect(introspector, token, key)
                        .await?
                        .map(|c| (provider, c))),
                    None => Ok(Err(TokenProblem::Malformed)),
                };
            }
            // A JWS with a refused header (`alg: none`, `crit`): never sent on.
            Err(problem) => return Ok(Err(problem)),
        };
        let issuer = unverified.issuer.as_deref();
        let local = issuer.and_then(|issuer| {
            self.providers
                .iter()
                .position(|p| p.jwt().is_some_and(|jwt| jwt.issuer() == issuer))
        });
        let Some(index) = local else {
            return match self.route_introspector(route, Sent::Jws(issuer)) {
                Some((provider, introspector)) => Ok(introspect(introspector, token, key)
                    .await?
                    .map(|c| (provider, c))),
                None if issuer.is_none() => Ok(Err(TokenProblem::InvalidClaims)),
                None => Ok(Err(TokenProblem::UnknownIssuer)),
            };
        };
        if !route.providers.contains(&index) {
            return Ok(Err(TokenProblem::IssuerNotAllowed));
        }
        let provider = &self.providers[index];
        let Some(verifier) = provider.jwt() else {
            return Ok(Err(TokenProblem::UnknownIssuer));
        };
        let verified = match verifier.verify(token, &unverified).await? {
            Ok(verified) => verified,
            Err(problem) => return Ok(Err(problem)),
        };
        let claims = Arc::new(verified.claims);
        match provider.introspection() {
            // Revocation check: the JWT verified, and the issuer must agree
            // it is still active (its own cache bounds the calls). Its own
            // claims stay the ones that count.
            Some(introspector) if introspector.introspects_jwts() => {
                if let Err(problem) = introspect(introspector, token, key).await? {
                    return Ok(Err(problem));
                }
            }
            _ => self
                .verified
                .insert(key, index, Arc::clone(&claims), verified.keys),
        }
        Ok(Ok((provider, claims)))
    }

    /// The route's introspection provider (config allows at most one), if
    /// it may receive a token naming `issuer`.
    fn route_introspector(
        &self,
        route: &RoutePolicy,
        token: Sent<'_>,
    ) -> Option<(&Provider, &Introspector)> {
        route
            .providers
            .iter()
            .map(|&index| &self.providers[index])
            .find_map(|provider| provider.introspection().map(|i| (provider, i)))
            .filter(|(_, introspector)| match token {
                Sent::Opaque => true,
                Sent::Jws(Some(issuer)) => introspector.accepts_issuer(issuer),
                // A JWS naming no issuer goes only where no issuer is set.
                Sent::Jws(None) => !introspector.has_issuer(),
            })
    }
}

/// What kind of token would be sent to an introspection endpoint.
#[derive(Clone, Copy)]
enum Sent<'a> {
    /// Not a JWS: only the issuer can tell.
    Opaque,
    /// A JWS no provider has keys for, naming this issuer (or none).
    Jws(Option<&'a str>),
}

/// Asks the introspection endpoint; an active answer must also pass the
/// provider's own checks.
async fn introspect(
    introspector: &Introspector,
    token: &str,
    key: [u8; 32],
) -> Result<Result<Claims, TokenProblem>, Fault> {
    match introspector.introspect_hashed(token, key).await {
        Ok(Introspection::Active(claims)) => Ok(introspector.validate(&claims).map(|()| claims)),
        Ok(Introspection::Inactive) => Ok(Err(TokenProblem::Inactive)),
        Err(source) => Err(Fault::Introspection(IntrospectionFailed {
            provider: introspector.provider().clone(),
            source,
        })),
    }
}
