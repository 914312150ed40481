//! Routes in config: matchers, accepted providers, requirements and upstream
//! header mappings, validated into [`RouteSettings`].

use std::collections::HashMap;
use std::sync::Arc;

use super::output::{OutputDefaults, RawOutput, RouteOutput, with_preset};
use super::raw::{self, RawClaimPath, RawPath, RawRoute};
use super::{ConfigError, invalid, is_http_token};
use crate::claims::{ClaimPath, ClaimRule, ClaimTest, Requirements};
use crate::routes::{MatchSpec, PathParameters, PathSpec, RouteMatcher};

/// One route: what it matches and what it demands.
pub struct RouteSettings {
    /// What requests it applies to.
    pub matcher: RouteMatcher,
    /// What it demands of them.
    pub policy: RoutePolicy,
}

/// What a route demands of a request, and what it sends upstream.
pub struct RoutePolicy {
    /// Name used in logs and metrics.
    pub name: Arc<str>,
    /// Indexes into `Config::providers` of the providers it accepts.
    pub providers: Vec<usize>,
    /// No token needed.
    pub anonymous: bool,
    /// Scopes and claims the token must have.
    pub require: Requirements,
    /// Headers set on the upstream request from claims.
    pub upstream_headers: Arc<[HeaderMapping]>,
    /// Remove the headers tokens are read from before the request goes upstream.
    pub remove_token_header: bool,
    /// Joins array claims rendered into one header.
    pub claim_separator: Arc<str>,
    /// Static headers, removals, deny shape, dry run, signed identity.
    pub output: Arc<RouteOutput>,
}

/// One upstream header filled from a claim.
#[derive(Debug, Clone)]
pub struct HeaderMapping {
    /// Lower-case header name.
    pub header: String,
    /// The claim rendered into it.
    pub claim: ClaimPath,
}

/// What routes inherit from `defaults:`, and the server setting their paths
/// depend on.
pub(super) struct RouteDefaults {
    pub(super) upstream_headers: Arc<[HeaderMapping]>,
    pub(super) remove_token_header: Option<bool>,
    pub(super) claim_separator: Arc<str>,
    pub(super) path_parameters: PathParameters,
    pub(super) output: OutputDefaults,
    pub(super) identity_configured: bool,
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

pub(super) fn route(
    raw: RawRoute,
    field: &str,
    providers: &HashMap<String, usize>,
    defaults: &RouteDefaults,
    warnings: &mut Vec<String>,
) -> Result<RouteSettings, ConfigError> {
    if raw.name.is_empty() {
        return Err(invalid(format!("{field}.name"), "must not be empty"));
    }
    let path = match raw.matcher.path {
        None => PathSpec::Any,
        Some(RawPath::Exact(p)) => PathSpec::Exact(p),
        Some(RawPath::Prefix(p)) => PathSpec::Prefix(p),
        Some(RawPath::Template(p)) => PathSpec::Template(p),
        Some(RawPath::Regex(p)) => PathSpec::Regex(p),
    };
    let spec = MatchSpec {
        hosts: raw.matcher.hosts,
        methods: raw.matcher.methods,
        path,
    };
    let matcher =
        RouteMatcher::new(&spec).map_err(|e| invalid(format!("{field}.match.{}", e.field()), e))?;
    check_path_parameters(&spec.path, defaults.path_parameters, field, warnings)?;
    warnings.extend(suspicious(&spec, field));
    let provider_indexes = match raw.providers {
        None => providers.values().copied().collect::<Vec<_>>(),
        Some(list) => list
            .iter()
            .map(|name| {
                providers.get(name).copied().ok_or_else(|| {
                    invalid(
                        format!("{field}.providers"),
                        format!("no provider is named `{name}`"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let require = requirements(raw.require, field)?;
    if raw.anonymous
        && (!require.all_scopes.is_empty()
            || !require.any_scopes.is_empty()
            || !require.claims.is_empty())
    {
        return Err(invalid(
            format!("{field}.require"),
            "an anonymous route cannot require scopes or claims",
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
    let mut provider_indexes = provider_indexes;
    provider_indexes.sort_unstable();
    provider_indexes.dedup();
    Ok(RouteSettings {
        matcher,
        policy: RoutePolicy {
            name: raw.name.into(),
            providers: provider_indexes,
            anonymous: raw.anonymous,
            require,
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

pub(super) fn claim_path(raw: RawClaimPath) -> Result<ClaimPath, String> {
    match raw {
        RawClaimPath::Dotted(path) => ClaimPath::dotted(&path),
        RawClaimPath::Segments(segments) => ClaimPath::segments(segments),
    }
}

/// Headers that Envoy owns or that would change how the request is routed or framed.
pub(super) const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "keep-alive",
    "proxy-connection",
];

/// Identity headers sent when the config names none: who called, and with
/// which scopes. Being identity headers, they are also never taken from the
/// client. `upstream_headers: {}` turns them off.
const DEFAULT_UPSTREAM_HEADERS: &[(&str, &str)] = &[
    ("x-auth-client-id", "client_id"),
    ("x-auth-scopes", "scope"),
    ("x-auth-subject", "sub"),
];

pub(super) fn default_header_mappings() -> Arc<[HeaderMapping]> {
    DEFAULT_UPSTREAM_HEADERS
        .iter()
        .map(|&(header, claim)| HeaderMapping {
            header: header.to_owned(),
            claim: ClaimPath::key(claim),
        })
        .collect()
}

pub(super) fn header_mappings(
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
