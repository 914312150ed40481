//! The [`Authorizer`]: one immutable configuration, and the check of one
//! request against it, top to bottom.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::grant::{self, HeaderTables};
use super::providers::Providers;
use super::record;
use super::request::{AuthzRequest, Target};
use super::settings::{AuthzSettings, RequestLimits, RoutePolicy, Unmatched};
use super::verify;
use crate::audit::{Auditor, Evidence};
use crate::binding::{Binder, Presented, ProofRequest, Refusal, Scheme};
use crate::claims::{Unmet, scopes};
use crate::digest::TokenKey;
use crate::headers::render_claims;
use crate::identity::{IdentityMinter, Subject};
use crate::metrics::ClientLabels;
use crate::outcome::{Bound, Decision, Denial, DenyReason, Fault, TokenProblem};
use crate::routes::{PathParameters, RouteTable};
use crate::token::extract::{self, ExtractError, HeaderFormat, TokenSource};
use crate::token::provider::Provider;
use crate::token::verified::{VerifiedCache, VerifiedCacheSettings};

/// Decides requests against one immutable configuration.
pub struct Authorizer {
    routes: RouteTable<RoutePolicy>,
    providers: Providers,
    /// JWTs that verified, so repeat callers pay no signature check.
    verified: VerifiedCache,
    token_cache: VerifiedCacheSettings,
    token_sources: Vec<TokenSource>,
    /// `Authorization: DPoP <token>` (RFC 9449 §7.1), looked for besides
    /// the configured sources.
    dpop_source: [TokenSource; 1],
    /// Holds bound tokens to their client certificate or DPoP proof; its
    /// replay cache is kept across reloads that leave its settings alone.
    binder: Arc<Binder>,
    tables: HeaderTables,
    unmatched: Unmatched,
    limits: RequestLimits,
    path_parameters: PathParameters,
    /// Mints signed identity tokens, when `identity:` is configured.
    identity: Option<IdentityMinter>,
    /// Which callers get a `client` metrics label of their own.
    client_labels: ClientLabels,
}

impl Authorizer {
    /// Builds the authorizer, starting a JWKS refresh task per remote key
    /// source (so it must run inside a Tokio runtime). The tasks stop when
    /// the authorizer is dropped. `client` fetches keys; `roots` are the
    /// CAs it trusts besides the system's, for the clients built here.
    pub(crate) fn new(
        settings: AuthzSettings,
        client: &reqwest::Client,
        roots: &[reqwest::Certificate],
    ) -> Authorizer {
        Authorizer::build(settings, client, roots, None)
    }

    /// Builds the authorizer for a reloaded config, keeping what still
    /// holds: every provider whose settings did not change (its keys, its
    /// introspection answers), the keys of one that fetches them the same
    /// way, and the verified-JWT cache when its settings are the same. A
    /// reload then causes no refetch, no burst of introspection calls and
    /// no gap. Minted identity tokens start anew: a route's identity
    /// settings may have changed under the same name.
    pub(crate) fn renew(
        &self,
        settings: AuthzSettings,
        client: &reqwest::Client,
        roots: &[reqwest::Certificate],
    ) -> Authorizer {
        Authorizer::build(settings, client, roots, Some(self))
    }

    fn build(
        settings: AuthzSettings,
        client: &reqwest::Client,
        roots: &[reqwest::Certificate],
        previous: Option<&Authorizer>,
    ) -> Authorizer {
        let tables = HeaderTables::new(&settings);
        let AuthzSettings {
            providers,
            token_sources,
            routes,
            unmatched,
            default_identity_headers: _,
            identity,
            token_cache,
            limits,
            path_parameters,
            client_labels,
            binding,
        } = settings;
        let providers = Providers::start(providers, client, roots, previous.map(|p| &p.providers));
        // The cache's entries name the provider and verifier that vouched,
        // so they stay right whatever else changed.
        let verified = match previous {
            Some(previous) if previous.token_cache == token_cache => previous.verified.clone(),
            _ => VerifiedCache::new(&token_cache),
        };
        let binder = match previous {
            Some(previous) if *previous.binder.settings() == binding => {
                Arc::clone(&previous.binder)
            }
            _ => Arc::new(Binder::new(&binding)),
        };
        let identity = identity.map(IdentityMinter::new);
        let routes = routes
            .into_iter()
            .map(|route| (route.matcher, route.policy))
            .collect();
        Authorizer {
            routes: RouteTable::new(routes),
            providers,
            verified,
            token_cache,
            token_sources,
            dpop_source: [TokenSource::Header {
                name: "authorization".to_owned(),
                format: HeaderFormat::Scheme("DPoP".to_owned()),
            }],
            binder,
            tables,
            unmatched,
            limits,
            path_parameters,
            identity,
            client_labels,
        }
    }

    /// The identity token minter, for the JWKS it publishes.
    pub(crate) fn identity(&self) -> Option<&IdentityMinter> {
        self.identity.as_ref()
    }

    /// The providers, for readiness reporting.
    pub(crate) fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter()
    }

    /// Decides one request and logs the decision (never the token). Its
    /// host, route, decision and reason go on the current span too: the
    /// [`Checkpoint`](super::Checkpoint) runs this inside the check's span.
    /// (The server checks through [`Authorizer::check_audited`]; this is
    /// for benches, fuzz targets and tests.)
    #[cfg(any(test, fuzzing, feature = "test-util"))]
    pub async fn check(&self, request: &AuthzRequest) -> Result<Decision, Fault> {
        self.check_audited(request, &Auditor::off()).await
    }

    /// As `check`, and hands the decision to `audit`: a
    /// recorded decision gets a decision id, returned to Envoy with it.
    pub(crate) async fn check_audited(
        &self,
        request: &AuthzRequest,
        audit: &Auditor,
    ) -> Result<Decision, Fault> {
        let started = tokio::time::Instant::now();
        let target = request.target(self.path_parameters);
        let mut evidence = Evidence::default();
        let mut outcome = self.decide(&target, &mut evidence).await;
        let latency = started.elapsed();
        let decision_id = record::stamp(audit, &mut outcome);
        record::log_outcome(&target, &outcome, decision_id);
        record::record_outcome(&target, &outcome, latency);
        record::count_client(&self.client_labels, &outcome, &evidence);
        if let Some(id) = decision_id {
            record::audit(audit, id, &target, &outcome, &evidence, latency);
        }
        outcome
    }

    async fn decide(
        &self,
        target: &Target<'_>,
        evidence: &mut Evidence,
    ) -> Result<Decision, Fault> {
        if target.headers.len() > self.limits.max_headers {
            return Ok(self.refuse(DenyReason::TooManyHeaders, None));
        }
        if let Err(error) = &target.path {
            return Ok(self.refuse(DenyReason::BadPath, Some(error.to_string())));
        }
        let Some(route_target) = target.route_target() else {
            return Ok(self.refuse(DenyReason::BadHost, None));
        };
        let Some((_, route)) = self.routes.find(&route_target) else {
            return Ok(if self.unmatched.allow {
                let grant = self
                    .tables
                    .grant(target, None, None, Vec::new(), Map::new());
                Decision::Allow(grant)
            } else {
                self.refuse(DenyReason::NoRoute, None)
            });
        };
        Ok(match self.decide_route(target, route, evidence).await? {
            Decision::Deny(denial) if route.output.dry_run => {
                record::log_dry_run(target, &denial);
                // Let through, but vouched for by nothing: nothing is set, so
                // every identity header (static ones included) is removed.
                let grant = self
                    .tables
                    .grant(target, Some(route), None, Vec::new(), Map::new());
                Decision::Allow(grant)
            }
            decision => decision,
        })
    }

    /// A refusal before any route is known, in the defaults' deny shape.
    fn refuse(&self, reason: DenyReason, detail: Option<String>) -> Decision {
        Decision::Deny(Denial {
            detail,
            ..Denial::new(reason, None, self.unmatched.deny.clone())
        })
    }

    /// Who vouches for `token` on `route` ([`verify::verify`] over this
    /// authorizer's providers and cache), noting what it learns for the
    /// audit record.
    async fn verify<'a>(
        &'a self,
        route: &RoutePolicy,
        token: &str,
        key: TokenKey,
        evidence: &mut Evidence,
    ) -> Result<verify::Verdict<'a>, Fault> {
        verify::verify(&self.providers, &self.verified, route, token, key, evidence).await
    }

    /// The decision for a request that matched `route`.
    async fn decide_route(
        &self,
        target: &Target<'_>,
        route: &RoutePolicy,
        evidence: &mut Evidence,
    ) -> Result<Decision, Fault> {
        if route.anonymous {
            let mut set = Vec::new();
            grant::add_static(&mut set, &route.output.static_headers);
            let grant = self
                .tables
                .grant(target, Some(route), None, set, Map::new());
            return Ok(Decision::Allow(grant));
        }
        let deny = |reason, scheme| {
            Decision::Deny(Denial {
                scheme: self.binder.challenge(route.binding, scheme),
                ..route.deny(reason)
            })
        };
        let (token, scheme) = match self.token(target) {
            Ok(found) => found,
            Err((reason, scheme)) => return Ok(deny(reason, scheme)),
        };
        if token.len() > self.limits.max_token_bytes {
            return Ok(deny(
                DenyReason::InvalidToken(TokenProblem::TooLong),
                scheme,
            ));
        }
        // Hashed once: the verified-JWT, introspection and identity caches
        // all look it up by this.
        let key = TokenKey::of(&token);
        let verdict = self.verify(route, &token, key, evidence).await?;
        let (provider, claims) = match verdict {
            Ok(verified) => verified,
            Err(problem) => return Ok(deny(DenyReason::InvalidToken(problem), scheme)),
        };
        let caller = grant::caller(provider.name(), &claims);
        let bound = match self.bind(target, route, &token, scheme, &claims) {
            Ok(bound) => bound,
            Err(refusal) => {
                return Ok(Decision::Deny(Denial {
                    caller: Some(caller),
                    scheme: refusal.scheme,
                    binding: refusal.bound,
                    ..route.deny(refusal.reason)
                }));
            }
        };
        let granted = scopes(&claims, provider.scope_claims());
        if let Err(unmet) = route.require.check(&granted, &claims) {
            let scope_hint = route.require.scope_hint(&unmet);
            let (reason, detail) = match unmet {
                Unmet::AllScopes | Unmet::AnyScopes => (DenyReason::InsufficientScope, None),
                Unmet::Claim(path) => (DenyReason::ClaimMismatch, Some(format!("claim {path}"))),
            };
            return Ok(Decision::Deny(Denial {
                caller: Some(caller),
                scope_hint,
                detail,
                binding: bound,
                scheme: self.binder.challenge(route.binding, scheme),
                ..route.deny(reason)
            }));
        }
        let mut set = render_claims(&route.upstream_headers, &claims, &route.claim_separator);
        let subject = Subject {
            key,
            route: &route.name,
            caller: &caller,
            claims: &claims,
            scopes: &granted,
        };
        grant::caller_headers(self.identity(), route, &mut set, &token, subject).await?;
        grant::add_static(&mut set, &route.output.static_headers);
        let metadata = grant::metadata(route, &claims);
        let mut grant = self
            .tables
            .grant(target, Some(route), Some(caller), set, metadata);
        grant.binding = bound;
        Ok(Decision::Allow(grant))
    }

    /// The token and how it came: from the configured sources, or as
    /// `Authorization: DPoP`. Both at once is two tokens (RFC 6750 §2). A
    /// refusal names the scheme its challenge should use.
    fn token<'t>(
        &'t self,
        target: &'t Target<'_>,
    ) -> Result<(Cow<'t, str>, Scheme), (DenyReason, Scheme)> {
        let refuse = |scheme| {
            move |error| match error {
                ExtractError::Conflict => (DenyReason::ConflictingTokens, scheme),
                ExtractError::Malformed => {
                    (DenyReason::InvalidToken(TokenProblem::Malformed), scheme)
                }
            }
        };
        let bearer =
            extract::extract(&self.token_sources, target).map_err(refuse(Scheme::Bearer))?;
        let dpop = extract::extract(&self.dpop_source, target).map_err(refuse(Scheme::Dpop))?;
        match (bearer, dpop) {
            (Some(_), Some(_)) => Err((DenyReason::ConflictingTokens, Scheme::Bearer)),
            (Some(token), None) => Ok((token, Scheme::Bearer)),
            (None, Some(token)) => Ok((token, Scheme::Dpop)),
            (None, None) => Err((DenyReason::MissingToken, Scheme::Bearer)),
        }
    }

    /// Holds the token to the bindings it carries and the route demands.
    fn bind(
        &self,
        target: &Target<'_>,
        route: &RoutePolicy,
        token: &str,
        scheme: Scheme,
        claims: &Map<String, Value>,
    ) -> Result<Bound, Refusal> {
        let presented = Presented {
            token,
            scheme,
            request: ProofRequest {
                method: &target.method,
                scheme: &target.raw.scheme,
                authority: &target.raw.authority,
                path: target.path.as_deref().unwrap_or_default(),
                path_parameters: self.path_parameters,
            },
            headers: target.headers,
            peer_certificate: target.raw.peer_certificate.as_deref(),
        };
        self.binder.check(route.binding, &presented, claims)
    }
}

#[cfg(test)]
mod tests;
