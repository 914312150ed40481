//! `routes:` and `defaults:`: matchers, accepted providers, requirements
//! and upstream header mappings, validated into the authorizer's
//! [`Route`]s, with the checks across routes and providers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::error::{ConfigError, invalid};
use super::output::{OutputDefaults, RawOutput, with_preset};
use super::raw::{self, RawClaimPath, RawPath, RawRoute, RawRouteDefaults, RawUnmatched};
use super::values::{RESERVED_HEADERS, claim_path, is_http_token};
use crate::authz::settings::{Route, RoutePolicy, Unmatched};
use crate::binding::RouteBinding;
use crate::claims::{ClaimPath, ClaimRule, ClaimTest, Requirements};
use crate::headers::HeaderMapping;
use crate::outcome::DenyShape;
use crate::routes::{MatchSpec, PathParameters, PathSpec, RouteMatcher};
use crate::token::provider::{ProviderId, ProviderSettings};

/// What routes are read against: the providers they may name, and the
/// server settings their deny shapes and paths depend on.
pub(super) struct Context<'a> {
    pub(super) providers: &'a [ProviderSettings],
    /// `server.realm`, the default of every `deny.realm`.
    pub(super) realm: Option<String>,
    pub(super) path_parameters: PathParameters,
    /// Whether the top-level `identity:` section is there.
    pub(super) identity_configured: bool,
}

/// The routes, and what `defaults:` says about requests no route matches.
pub(super) struct Routes {
    pub(super) routes: Vec<Route>,
    /// How denies look when no route is known.
    pub(super) default_deny: Arc<DenyShape>,
    /// Headers `defaults:` fills (claim headers, its preset's, static ones).
    pub(super) default_identity_headers: Vec<String>,
}

/// Every route in file order, with `defaults:` filling what each leaves out.
pub(super) fn routes(
    raw: Vec<RawRoute>,
    defaults: RawRouteDefaults,
    context: &Context<'_>,
    warnings: &mut Vec<String>,
) -> Result<Routes, ConfigError> {
    let defaults = route_defaults(defaults, context)?;
    let ids: HashMap<&str, ProviderId> = context
        .providers
        .iter()
        .enumerate()
        .map(|(index, provider)| (&*provider.name, ProviderId(index)))
        .collect();
    let mut routes = Vec::with_capacity(raw.len());
    let mut names = HashSet::new();
    for (i, r) in raw.into_iter().enumerate() {
        let field = format!("routes[{i}]");
        if !names.insert(r.name.clone()) {
            return Err(invalid(
                format!("{field}.name"),
                format!("`{}` is used by two routes", r.name),
            ));
        }
        let route = route(r, &field, &ids, &defaults, warnings)?;
        check_providers(&route.policy, context.providers, &field)?;
        routes.push(route);
    }
    if routes.is_empty() {
        warnings.push("no routes are configured: every request is denied".to_owned());
    }
    let mut default_identity_headers: Vec<String> =
        with_preset(defaults.upstream_headers.clone(), defaults.output.preset)
            .iter()
            .map(|mapping| mapping.header.clone())
            .collect();
    default_identity_headers.extend(
        defaults
            .output
            .output
            .static_headers
            .iter()
            .map(|(name, _)| name.clone()),
    );
    Ok(Routes {
        routes,
        default_deny: defaults.output.deny(),
        default_identity_headers,
    })
}

/// A route must be verifiable, and may not hand an opaque token to more
/// than one introspecting issuer.
fn check_providers(
    policy: &RoutePolicy,
    providers: &[ProviderSettings],
    field: &str,
) -> Result<(), ConfigError> {
    if !policy.anonymous && policy.providers.is_empty() {
        return Err(invalid(
            format!("{field}.providers"),
            "no provider can verify tokens for this route; configure `providers` or make the route `anonymous`",
        ));
    }
    let introspecting: Vec<&str> = policy
        .providers
        .iter()
        .filter_map(|id| providers.get(id.0))
        .filter(|p| p.introspection.is_some())
        .map(|p| &*p.name)
        .collect();
    if introspecting.len() > 1 {
        return Err(invalid(
            format!("{field}.providers"),
            format!(
                "accepts tokens introspected by {}; an opaque token does not say which issuer it is from, and tollgate will not hand it to issuers it may not belong to: name one of them in `providers`",
                introspecting.join(" and ")
            ),
        ));
    }
    Ok(())
}

/// What happens to a request no route matches.
pub(super) fn unmatched(raw: RawUnmatched, deny: Arc<DenyShape>) -> Unmatched {
    Unmatched {
        allow: raw == RawUnmatched::Allow,
        deny,
    }
}

/// HTTP mode cannot remove a query parameter; say so where a route expects
/// the token's to be removed.
pub(super) fn warn_query_token_in_http_mode(routes: &[Route], warnings: &mut Vec<String>) {
    if routes.iter().any(|r| r.policy.remove_token_header) {
        warnings.push(
            "server.http_enabled: HTTP ext_authz mode cannot remove the token query parameter (Envoy's http_service has no way to say so); use gRPC mode where `remove_token_header` must cover it".to_owned(),
        );
    }
}

fn route_defaults(
    raw: RawRouteDefaults,
    context: &Context<'_>,
) -> Result<RouteDefaults, ConfigError> {
    let defaults = RouteDefaults {
        upstream_headers: match raw.upstream_headers {
            Some(map) => header_mappings(map, "defaults.upstream_headers")?,
            None => default_header_mappings(),
        },
        remove_token_header: raw.remove_token_header,
        claim_separator: raw.claim_separator.unwrap_or_else(|| ",".to_owned()).into(),
        path_parameters: context.path_parameters,
        output: OutputDefaults::new(
            RawOutput {
                static_headers: raw.static_headers,
                header_preset: raw.header_preset,
                remove_headers: raw.remove_headers,
                response_headers_to_add: raw.response_headers_to_add,
                metadata_claims: raw.metadata_claims,
                deny: raw.deny,
                dry_run: raw.dry_run,
            },
            context.realm.clone(),
        )?,
        identity_configured: context.identity_configured,
    };
    if defaults.claim_separator.is_empty() {
        return Err(invalid("defaults.claim_separator", "must not be empty"));
    }
    Ok(defaults)
}

/// What routes inherit from `defaults:`, and the server setting their paths
/// depend on.
struct RouteDefaults {
    upstream_headers: Arc<[HeaderMapping]>,
    remove_token_header: Option<bool>,
    claim_separator: Arc<str>,
    path_parameters: PathParameters,
    output: OutputDefaults,
    identity_configured: bool,
}

/// Methods of RFC 9110, PATCH, and WebDAV's; a route naming another is
/// probably a typo that silently never matches.
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "QUERY",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
];

/// A `;` in a route's path can only ever match when requests keep theirs.
fn check_path_parameters(
    path: &PathSpec,
    mode: PathParameters,
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if mode == PathParameters::Keep {
        return Ok(());
    }
    match path {
        PathSpec::Exact(p) | PathSpec::Prefix(p) | PathSpec::Template(p) if p.contains(';') => {
            Err(invalid(
                format!("{field}.match.path"),
                format!(
                    "`{p}` holds `;`, which requests can only carry with `server.path_parameters: keep`"
                ),
            ))
        }
        PathSpec::Regex(p) if p.contains(';') => {
            warnings.push(format!(
                "{field}.match.path: regex `{p}` holds `;`, which no request path has unless `server.path_parameters: keep`"
            ));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Match settings that are valid but probably not what was meant.
fn suspicious(spec: &MatchSpec, field: &str) -> Vec<String> {
    let mut warnings: Vec<String> = spec
        .methods
        .iter()
        .filter(|m| !KNOWN_METHODS.iter().any(|k| k.eq_ignore_ascii_case(m)))
        .map(|m| {
            format!("{field}.match.methods: `{m}` is not a standard HTTP method; only requests using exactly it match")
        })
        .collect();
    if let PathSpec::Exact(path) | PathSpec::Prefix(path) = &spec.path
        && path.contains(['*', '{'])
    {
        warnings.push(format!(
            "{field}.match.path: `{path}` matches `*` and `{{` literally; use `template` for wildcards"
        ));
    }
    warnings
}

fn route(
    raw: RawRoute,
    field: &str,
    providers: &HashMap<&str, ProviderId>,
    defaults: &RouteDefaults,
    warnings: &mut Vec<String>,
) -> Result<Route, ConfigError> {
    if raw.name.is_empty() {
        return Err(invalid(format!("{field}.name"), "must not be empty"));
    }
    let matcher = matcher(raw.matcher, field, defaults.path_parameters, warnings)?;
    let provider_ids = provider_ids(raw.providers, providers, field)?;
    let binding = super::binding::route_binding(raw.require.binding);
    let require = requirements(raw.require, field)?;
    if raw.anonymous
        && (!require.all_scopes.is_empty()
            || !require.any_scopes.is_empty()
            || !require.claims.is_empty()
            || binding != RouteBinding::None)
    {
        return Err(invalid(
            format!("{field}.require"),
            "an anonymous route cannot require scopes, claims or a binding",
        ));
    }
    let upstream_headers = match raw.upstream_headers {
        Some(map) => header_mappings(map, &format!("{field}.upstream_headers"))?,
        None => defaults.upstream_headers.clone(),
    };
    let (output, preset) = defaults.output.route(
        RawOutput {
            static_headers: raw.static_headers,
            header_preset: raw.header_preset,
            remove_headers: raw.remove_headers,
            response_headers_to_add: raw.response_headers_to_add,
            metadata_claims: raw.metadata_claims,
            deny: raw.deny,
            dry_run: raw.dry_run,
        },
        raw.upstream_identity,
        field,
        defaults.identity_configured,
    )?;
    let upstream_headers = with_preset(upstream_headers, preset);
    Ok(Route {
        matcher,
        policy: RoutePolicy {
            name: raw.name.into(),
            providers: provider_ids,
            anonymous: raw.anonymous,
            require,
            binding,
            upstream_headers,
            remove_token_header: raw
                .remove_token_header
                .or(defaults.remove_token_header)
                .unwrap_or(false),
            claim_separator: defaults.claim_separator.clone(),
            output: Arc::new(output),
        },
    })
}

/// The route's `match:` compiled, with warnings for what is valid but
/// probably not meant.
fn matcher(
    raw: raw::RawMatch,
    field: &str,
    path_parameters: PathParameters,
    warnings: &mut Vec<String>,
) -> Result<RouteMatcher, ConfigError> {
    let path = match raw.path {
        None => PathSpec::Any,
        Some(RawPath::Exact(p)) => PathSpec::Exact(p),
        Some(RawPath::Prefix(p)) => PathSpec::Prefix(p),
        Some(RawPath::Template(p)) => PathSpec::Template(p),
        Some(RawPath::Regex(p)) => PathSpec::Regex(p),
    };
    let spec = MatchSpec {
        hosts: raw.hosts,
        methods: raw.methods,
        path,
    };
    let matcher =
        RouteMatcher::new(&spec).map_err(|e| invalid(format!("{field}.match.{}", e.field()), e))?;
    check_path_parameters(&spec.path, path_parameters, field, warnings)?;
    warnings.extend(suspicious(&spec, field));
    Ok(matcher)
}

/// The providers a route names, sorted; every provider when it names none.
fn provider_ids(
    names: Option<Vec<String>>,
    providers: &HashMap<&str, ProviderId>,
    field: &str,
) -> Result<Vec<ProviderId>, ConfigError> {
    let mut ids = match names {
        None => providers.values().copied().collect::<Vec<_>>(),
        Some(list) => list
            .iter()
            .map(|name| {
                providers.get(name.as_str()).copied().ok_or_else(|| {
                    invalid(
                        format!("{field}.providers"),
                        format!("no provider is named `{name}`"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

fn requirements(raw: raw::RawRequire, field: &str) -> Result<Requirements, ConfigError> {
    for (name, list) in [("scopes", &raw.scopes), ("any_scopes", &raw.any_scopes)] {
        if let Some(bad) = list.iter().find(|s| {
            s.is_empty() || s.contains(|c: char| c.is_ascii_whitespace() || c == '"' || c == '\\')
        }) {
            return Err(invalid(
                format!("{field}.require.{name}"),
                format!(
                    "`{bad}` is not a scope token (RFC 6749 §3.3: no spaces, quotes or backslashes)"
                ),
            ));
        }
    }
    let claims = raw
        .claims
        .into_iter()
        .enumerate()
        .map(|(i, rule)| {
            let at = format!("{field}.require.claims[{i}]");
            let path = claim_path(rule.claim).map_err(|m| invalid(format!("{at}.claim"), m))?;
            let test = match (rule.equals, rule.contains, rule.contains_any) {
                (Some(v), None, None) => ClaimTest::Equals(v),
                (None, Some(v), None) => ClaimTest::Contains(v),
                (None, None, Some(v)) if !v.is_empty() => ClaimTest::ContainsAny(v),
                _ => {
                    return Err(invalid(
                        at,
                        "set exactly one of `equals`, `contains` or `contains_any` (non-empty)",
                    ));
                }
            };
            Ok(ClaimRule { path, test })
        })
        .collect::<Result<_, _>>()?;
    Ok(Requirements {
        all_scopes: raw.scopes,
        any_scopes: raw.any_scopes,
        claims,
    })
}

/// Identity headers sent when the config names none: who called, and with
/// which scopes. Being identity headers, they are also never taken from the
/// client. `upstream_headers: {}` turns them off.
const DEFAULT_UPSTREAM_HEADERS: &[(&str, &str)] = &[
    ("x-auth-client-id", "client_id"),
    ("x-auth-scopes", "scope"),
    ("x-auth-subject", "sub"),
];

fn default_header_mappings() -> Arc<[HeaderMapping]> {
    DEFAULT_UPSTREAM_HEADERS
        .iter()
        .map(|&(header, claim)| HeaderMapping {
            header: header.to_owned(),
            claim: ClaimPath::key(claim),
        })
        .collect()
}

fn header_mappings(
    map: std::collections::BTreeMap<String, RawClaimPath>,
    field: &str,
) -> Result<Arc<[HeaderMapping]>, ConfigError> {
    map.into_iter()
        .map(|(header, claim)| {
            let lower = header.to_ascii_lowercase();
            if !is_http_token(&lower) || RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(invalid(
                    format!("{field}.{header}"),
                    "is not a header tollgate may set",
                ));
            }
            let claim = claim_path(claim).map_err(|m| invalid(format!("{field}.{header}"), m))?;
            Ok(HeaderMapping {
                header: lower,
                claim,
            })
        })
        .collect()
}
