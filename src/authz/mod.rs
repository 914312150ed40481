//! The authorizer: one request in, one decision out. It knows nothing of
//! gRPC or Envoy; the edges translate to and from [`AuthzRequest`] and
//! [`Decision`].

mod decision;
mod output;
mod request;
mod verify;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

pub use decision::{
    Caller, Decision, Denial, DenyReason, Fault, Grant, IntrospectionFailed, grpc_code,
};

use crate::claims::{Unmet, scopes};
use crate::config::{Config, RoutePolicy};
use crate::headers::{UpstreamHeaders, render_claims};
use crate::identity::IdentityMinter;
use crate::reply::DenyShape;
use crate::routes::{PathError, PathParameters, RequestTarget, RouteTable};
use crate::telemetry::ErrorChain;
use crate::token::TokenProblem;
use crate::token::extract::{self, ExtractError, TokenCarrier, TokenSource};
use crate::token::provider::Provider;
use crate::token::verified::VerifiedCache;

/// Verified claims: a JWT's payload, or an introspection answer's members.
pub type Claims = Arc<Map<String, Value>>;

/// A request as the authorizer sees it, built once at the edge.
#[derive(Debug, Clone)]
pub struct AuthzRequest {
    /// Host, lower-case, without port; `None` when the authority is malformed.
    pub host: Option<String>,
    /// Method, upper-case.
    pub method: String,
    /// The normalised path without query, or why it could not be normalised.
    pub path: Result<String, PathError>,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Header lines, names lower-case, one entry per value.
    pub headers: Vec<(String, String)>,
}

impl TokenCarrier for AuthzRequest {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

/// Decides requests against one immutable configuration.
pub struct Authorizer {
    routes: RouteTable<RoutePolicy>,
    providers: Vec<Provider>,
    /// JWTs that verified, so repeat callers pay no signature check.
    verified: VerifiedCache,
    token_sources: Vec<TokenSource>,
    /// Headers tokens are read from, for `remove_token_header`.
    token_headers: Vec<String>,
    /// Query parameters tokens are read from, for `remove_token_header`.
    token_query_parameters: Vec<String>,
    /// See [`Config::identity_headers`].
    identity_headers: Vec<String>,
    allow_unmatched: bool,
    max_token_bytes: usize,
    max_headers: usize,
    realm: Option<String>,
    path_parameters: PathParameters,
    /// Mints signed identity tokens, when `identity:` is configured.
    identity: Option<IdentityMinter>,
    /// Each route's deny shape, by route name.
    deny_shapes: HashMap<Arc<str>, Arc<DenyShape>>,
    /// The deny shape of requests no route matches.
    default_deny: Arc<DenyShape>,
}

impl Authorizer {
    /// Builds the authorizer, starting a JWKS refresh task per remote key
    /// source (so it must run inside a Tokio runtime). The tasks stop when
    /// the authorizer is dropped.
    pub fn new(config: Config, client: reqwest::Client) -> Authorizer {
        Authorizer::build(config, client, &[])
    }

    /// Builds the authorizer for a reloaded `config`, keeping the key cache
    /// (and its refresh task) of every provider whose key settings did not
    /// change, so a reload causes no refetch and no gap.
    pub fn renew(&self, config: Config, client: reqwest::Client) -> Authorizer {
        Authorizer::build(config, client, &self.providers)
    }

    fn build(config: Config, client: reqwest::Client, previous: &[Provider]) -> Authorizer {
        let providers = config
            .providers
            .into_iter()
            .map(|settings| Provider::start_reusing(settings, &client, previous))
            .collect();
        let mut token_headers = Vec::new();
        let mut token_query_parameters = Vec::new();
        for source in &config.token_sources {
            match source {
                TokenSource::Header { name, .. } => token_headers.push(name.clone()),
                TokenSource::Query(name) => token_query_parameters.push(name.clone()),
                // Other cookies share the header, so a token cookie stays.
                TokenSource::Cookie(_) => {}
            }
        }
        let deny_shapes = config
            .routes
            .iter()
            .map(|route| (route.policy.name.clone(), route.policy.output.deny.clone()))
            .collect();
        let routes = RouteTable::new(
            config
                .routes
                .into_iter()
                .map(|route| (route.matcher, route.policy))
                .collect(),
        );
        Authorizer {
            routes,
            providers,
            verified: VerifiedCache::new(&config.server.token_cache),
            token_sources: config.token_sources,
            token_headers,
            token_query_parameters,
            identity_headers: config.identity_headers,
            allow_unmatched: config.allow_unmatched,
            max_token_bytes: config.server.max_token_bytes,
            max_headers: config.server.max_headers,
            realm: config.server.realm,
            path_parameters: config.server.path_parameters,
            identity: config.identity.map(IdentityMinter::new),
            deny_shapes,
            default_deny: config.default_deny,
        }
    }

    /// The identity token minter, for the JWKS it publishes.
    pub fn identity(&self) -> Option<&IdentityMinter> {
        self.identity.as_ref()
    }

    /// How a deny on `route` (or on no route) looks to the client.
    pub fn deny_shape(&self, route: Option<&str>) -> &DenyShape {
        route
            .and_then(|name| self.deny_shapes.get(name))
            .unwrap_or(&self.default_deny)
    }

    /// The providers, for readiness reporting.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// What `;` in a request path means; edges normalise paths with it.
    pub fn path_parameters(&self) -> PathParameters {
        self.path_parameters
    }

    /// `realm` for `WWW-Authenticate`.
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// Decides one request and logs the decision (never the token). Its
    /// route, decision and reason go on the current span too: the edge runs
    /// this inside [`crate::telemetry::check_span`].
    pub async fn check(&self, request: &AuthzRequest) -> Result<Decision, Fault> {
        let started = tokio::time::Instant::now();
        let outcome = self.decide(request).await;
        log_outcome(request, &outcome);
        record_outcome(&outcome, started.elapsed());
        outcome
    }

    async fn decide(&self, request: &AuthzRequest) -> Result<Decision, Fault> {
        if request.headers.len() > self.max_headers {
            return Ok(deny(DenyReason::TooManyHeaders, None));
        }
        let path = match &request.path {
            Ok(path) => path.as_str(),
            Err(error) => {
                return Ok(Decision::Deny(Denial {
                    detail: Some(error.to_string()),
                    ..denial(DenyReason::BadPath, None)
                }));
            }
        };
        let Some(host) = request.host.as_deref() else {
            return Ok(deny(DenyReason::BadHost, None));
        };
        let target = RequestTarget {
            host,
            method: &request.method,
            path,
        };
        let Some((_, route)) = self.routes.find(&target) else {
            return Ok(if self.allow_unmatched {
                Decision::Allow(self.grant(request, None, None, Vec::new(), Map::new()))
            } else {
                deny(DenyReason::NoRoute, None)
            });
        };
        let decision = self.decide_route(request, route).await?;
        Ok(match decision {
            Decision::Deny(denial) if route.output.dry_run => {
                output::log_dry_run(request, &denial);
                // Let through, but vouched for by nothing: nothing is set, so
                // every identity header (static ones included) is removed.
                Decision::Allow(self.grant(request, Some(route), None, Vec::new(), Map::new()))
            }
            decision => decision,
        })
    }

    /// The decision for a request that matched `route`.
    async fn decide_route(
        &self,
        request: &AuthzRequest,
        route: &RoutePolicy,
    ) -> Result<Decision, Fault> {
        let route_name = Some(route.name.clone());
        if route.anonymous {
            let mut set = Vec::new();
            output::add_static(&mut set, &route.output.static_headers);
            return Ok(Decision::Allow(self.grant(
                request,
                Some(route),
                None,
                set,
                Map::new(),
            )));
        }
        let token = match extract::extract(&self.token_sources, request) {
            Ok(Some(token)) => token,
            Ok(None) => return Ok(deny(DenyReason::MissingToken, route_name)),
            Err(ExtractError::Conflict) => {
                return Ok(deny(DenyReason::ConflictingTokens, route_name));
            }
            Err(ExtractError::Malformed) => {
                return Ok(deny(
                    DenyReason::InvalidToken(TokenProblem::Malformed),
                    route_name,
                ));
            }
        };
        let (provider, claims) = match self.verify(route, token.as_ref()).await? {
            Ok(verified) => verified,
            Err(problem) => return Ok(deny(DenyReason::InvalidToken(problem), route_name)),
        };
        let caller = caller(provider, &claims);
        let granted = scopes(&claims, provider.scope_claims());
        if let Err(unmet) = route.require.check(&granted, &claims) {
            let scope_hint = route.require.scope_hint(&unmet);
            let (reason, detail) = match unmet {
                Unmet::AllScopes | Unmet::AnyScopes => (DenyReason::InsufficientScope, None),
                Unmet::Claim(path) => (DenyReason::ClaimMismatch, Some(format!("claim {path}"))),
            };
            return Ok(Decision::Deny(Denial {
                reason,
                route: route_name,
                caller: Some(caller),
                scope_hint,
                detail,
            }));
        }
        let mut set = render_claims(&route.upstream_headers, &claims, &route.claim_separator);
        output::caller_headers(
            self.identity.as_ref(),
            route,
            &mut set,
            &token,
            &caller,
            &claims,
            &granted,
        )
        .await?;
        output::add_static(&mut set, &route.output.static_headers);
        let metadata = output::metadata(route, &claims);
        Ok(Decision::Allow(self.grant(
            request,
            Some(route),
            Some(caller),
            set,
            metadata,
        )))
    }

    /// An allow on `route` (or on no route): the upstream header changes,
    /// the response headers and the dynamic metadata, with the route's name.
    fn grant(
        &self,
        request: &AuthzRequest,
        route: Option<&RoutePolicy>,
        caller: Option<Caller>,
        set: Vec<(String, String)>,
        mut metadata: Map<String, Value>,
    ) -> Grant {
        if let Some(route) = route {
            metadata.insert("route".to_owned(), Value::from(&*route.name));
        }
        Grant {
            route: route.map(|route| route.name.clone()),
            caller,
            upstream: self.upstream(request, route, set),
            response_headers: route.map_or_else(Vec::new, |r| r.output.response_headers.clone()),
            metadata,
        }
    }

    /// The header changes for an allow: `set`, plus removal of every other
    /// identity header and, where the route asks, of the token's headers and
    /// query parameters (a cookie stays: other cookies share its header).
    ///
    /// Client headers that spell one of those with `_` for `-` or the other
    /// way round (`x_auth_subject`) go too: CGI-style servers (WSGI, PHP)
    /// read both spellings as the same `HTTP_X_AUTH_SUBJECT`.
    fn upstream(
        &self,
        request: &AuthzRequest,
        route: Option<&RoutePolicy>,
        set: Vec<(String, String)>,
    ) -> UpstreamHeaders {
        let remove_token = route.is_some_and(|route| route.remove_token_header);
        let mut remove: Vec<String> = self
            .identity_headers
            .iter()
            .filter(|header| !set.iter().any(|(name, _)| name == *header))
            .cloned()
            .collect();
        let mut remove_query = Vec::new();
        if remove_token {
            remove.extend(self.token_headers.iter().cloned());
            remove_query.extend(self.token_query_parameters.iter().cloned());
        }
        // Other spellings of those names, which CGI-style servers conflate.
        let guarded = self
            .identity_headers
            .iter()
            .chain(self.token_headers.iter().filter(|_| remove_token));
        let variants: Vec<String> = request
            .headers
            .iter()
            .map(|(name, _)| name)
            .filter(|name| !remove.contains(name) && !set.iter().any(|(set, _)| set == *name))
            .filter(|name| guarded.clone().any(|header| same_header(header, name)))
            .cloned()
            .collect();
        remove.extend(variants);
        if let Some(route) = route {
            remove.extend(
                route
                    .output
                    .remove_headers
                    .iter()
                    .filter(|name| {
                        !set.iter().any(|(set, _)| set == *name) && !remove.contains(name)
                    })
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        UpstreamHeaders {
            set,
            remove,
            remove_query,
        }
    }
}

/// Header names equal once `_` and `-` are the same (`x_auth_subject` and
/// `x-auth-subject`), as CGI, WSGI and PHP read them.
fn same_header(a: &str, b: &str) -> bool {
    let fold = |byte: u8| if byte == b'_' { b'-' } else { byte };
    a.len() == b.len() && a.bytes().map(fold).eq(b.bytes().map(fold))
}

fn deny(reason: DenyReason, route: Option<Arc<str>>) -> Decision {
    Decision::Deny(denial(reason, route))
}

fn denial(reason: DenyReason, route: Option<Arc<str>>) -> Denial {
    Denial {
        reason,
        route,
        caller: None,
        scope_hint: None,
        detail: None,
    }
}

fn caller(provider: &Provider, claims: &Map<String, Value>) -> Caller {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    Caller {
        provider: provider.name().clone(),
        subject: text("sub"),
        client_id: text("client_id")
            .or_else(|| text("azp"))
            .or_else(|| text("cid")),
    }
}

fn record_outcome(outcome: &Result<Decision, Fault>, duration: std::time::Duration) {
    let (decision, reason, route) = match outcome {
        Ok(Decision::Allow(grant)) => ("allow", "", &grant.route),
        Ok(Decision::Deny(denial)) => ("deny", denial.reason.label(), &denial.route),
        Err(fault) => ("error", fault.label(), &None),
    };
    let route = route.as_deref().unwrap_or(crate::metrics::UNMATCHED_ROUTE);
    crate::metrics::record_check(decision, reason, route, duration);
    crate::telemetry::record_decision(decision, reason, route);
}

fn log_outcome(request: &AuthzRequest, outcome: &Result<Decision, Fault>) {
    let path = request.path.as_deref().unwrap_or("<invalid>");
    let trace_id = crate::telemetry::trace_id();
    let (decision, route, caller, denial) = match outcome {
        Ok(Decision::Allow(grant)) => ("allow", &grant.route, &grant.caller, None),
        Ok(Decision::Deny(denial)) => ("deny", &denial.route, &denial.caller, Some(denial)),
        Err(fault) => {
            tracing::error!(
                decision = "error",
                reason = fault.label(),
                method = %request.method,
                host = request.host.as_deref().unwrap_or("<invalid>"),
                path,
                error = %ErrorChain(fault),
                trace_id,
                "check failed; Envoy's failure mode decides"
            );
            return;
        }
    };
    let caller = caller.as_ref();
    tracing::info!(
        decision,
        reason = denial.map(|d| d.reason.label()),
        status = denial.map(|d| d.reason.http_status()),
        detail = denial.and_then(|d| d.detail.as_deref()),
        route = route.as_deref().unwrap_or("<unmatched>"),
        method = %request.method,
        host = request.host.as_deref().unwrap_or("<invalid>"),
        path,
        provider = caller.map(|c| &*c.provider),
        subject = caller.and_then(|c| c.subject.as_deref()),
        client_id = caller.and_then(|c| c.client_id.as_deref()),
        trace_id,
        "check"
    );
}

#[cfg(test)]
mod tests;
