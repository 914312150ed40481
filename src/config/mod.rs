//! Configuration: the YAML file (plus `TOLLGATE_` environment overrides) is
//! read once, validated, and turned into typed settings. Every error names
//! the field that is wrong, so a broken config is refused at start.

mod raw;
mod values;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format as _, Yaml};
use jsonwebtoken::{Algorithm, Validation};

use crate::claims::{ClaimPath, ClaimRule, ClaimTest, Requirements};
use crate::routes::{MatchSpec, PathSpec, RouteMatcher};
use crate::token::extract::{HeaderFormat, TokenSource};
use crate::token::jwk::KeySet;
use crate::token::jwks::{JwksSettings, KeySource};
pub use raw::LogFormat;
use raw::{RawClaimPath, RawConfig, RawPath, RawProvider, RawRoute, RawTokenSource};
pub use values::Secret;
pub use values::parse_duration;

/// Top-level keys that `TOLLGATE_<KEY>__...` environment variables may set.
/// Other `TOLLGATE_` variables (such as test settings) are not config.
const ENV_SECTIONS: &[&str] = &["server", "log", "defaults", "unmatched"];

/// Algorithms accepted when a provider lists none: asymmetric only.
const DEFAULT_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const HMAC_ALGORITHMS: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or does not have the expected shape.
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    /// A field has a value tollgate cannot use.
    #[error("{field}: {message}")]
    Invalid {
        /// Where, as `routes[2].match.path`.
        field: String,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.to_string(),
    }
}

/// The validated configuration.
pub struct Config {
    /// Listener and response settings.
    pub server: ServerSettings,
    /// Log format and filter.
    pub log: LogSettings,
    /// Where tokens are looked for, in order.
    pub token_sources: Vec<TokenSource>,
    /// Token issuers.
    pub providers: Vec<ProviderSettings>,
    /// Routes in file order; the first match wins.
    pub routes: Vec<RouteSettings>,
    /// Let requests that match no route through (anonymously).
    pub allow_unmatched: bool,
    /// Things worth telling the operator that do not stop the start.
    pub warnings: Vec<String>,
}

/// Listener and response settings.
pub struct ServerSettings {
    /// Where the gRPC Check service listens.
    pub grpc_listen: SocketAddr,
    /// `realm` in `WWW-Authenticate`, if any.
    pub realm: Option<String>,
    /// Longest token accepted, in bytes.
    pub max_token_bytes: usize,
}

/// Log settings.
pub struct LogSettings {
    /// Human or JSON lines.
    pub format: LogFormat,
    /// A `tracing` filter directive.
    pub level: String,
}

/// One token issuer.
pub struct ProviderSettings {
    /// Name used by routes and in logs.
    pub name: Arc<str>,
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    /// Where its verification keys come from.
    pub keys: KeySource,
    /// Secret for HMAC algorithms, if configured.
    pub hmac_secret: Option<Secret>,
    /// Accepted `aud` values; empty means `aud` is not checked.
    pub audiences: Vec<String>,
    /// The allow-list; the token header only selects among these.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Claims scopes are read from, in order.
    pub scope_claims: Arc<[String]>,
    /// JWKS fetching and caching.
    pub jwks: JwksSettings,
}

impl ProviderSettings {
    /// The validation rules for tokens signed with `algorithm`, built
    /// explicitly: jsonwebtoken's defaults skip `nbf` and `iss`.
    pub fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        let mut required = vec!["exp", "iss"];
        if self.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

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
}

/// One upstream header filled from a claim.
#[derive(Debug, Clone)]
pub struct HeaderMapping {
    /// Lower-case header name.
    pub header: String,
    /// The claim rendered into it.
    pub claim: ClaimPath,
}

impl Config {
    /// Reads `path`, applies `TOLLGATE_...` environment overrides (`__`
    /// separates nested keys: `TOLLGATE_SERVER__GRPC_LISTEN`), and validates.
    /// Relative file paths inside the config resolve against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let figment = Figment::new().merge(Yaml::file_exact(path)).merge(
            Env::prefixed("TOLLGATE_").split("__").filter(|key| {
                let top = key.as_str().split('.').next().unwrap_or_default();
                ENV_SECTIONS.iter().any(|s| top.eq_ignore_ascii_case(s))
            }),
        );
        let raw: RawConfig = figment.extract().map_err(load_error)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_raw(raw, base)
    }

    /// Parses a YAML document (for tests and tools); paths resolve against `base`.
    pub fn from_yaml(yaml: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = Figment::new()
            .merge(Yaml::string(yaml))
            .extract()
            .map_err(load_error)?;
        Config::from_raw(raw, base)
    }

    fn from_raw(raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let server = ServerSettings {
            grpc_listen: raw.server.grpc_listen.parse().map_err(|e| {
                invalid(
                    "server.grpc_listen",
                    format!("{e}; expected host:port such as 0.0.0.0:9191"),
                )
            })?,
            realm: raw.server.realm,
            max_token_bytes: raw.server.max_token_bytes.unwrap_or(16 * 1024),
        };
        if server
            .realm
            .as_deref()
            .is_some_and(|r| r.contains(['"', '\\']) || r.chars().any(char::is_control))
        {
            return Err(invalid(
                "server.realm",
                "must not contain quotes, backslashes or control characters",
            ));
        }
        let log = LogSettings {
            format: raw.log.format,
            level: raw.log.level.unwrap_or_else(|| "info".to_owned()),
        };
        let token_sources = match raw.token_sources {
            None => vec![TokenSource::authorization_bearer()],
            Some(list) if list.is_empty() => {
                return Err(invalid(
                    "token_sources",
                    "list at least one place to read tokens from",
                ));
            }
            Some(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    token_source(s).map_err(|m| invalid(format!("token_sources[{i}]"), m))
                })
                .collect::<Result<_, _>>()?,
        };

        let mut providers = Vec::with_capacity(raw.providers.len());
        let mut names = HashMap::new();
        let mut issuers = HashSet::new();
        for (i, p) in raw.providers.into_iter().enumerate() {
            let field = format!("providers[{i}]");
            if names.insert(p.name.clone(), i).is_some() {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("`{}` is used by two providers", p.name),
                ));
            }
            if !issuers.insert(p.issuer.clone()) {
                return Err(invalid(
                    format!("{field}.issuer"),
                    format!("`{}` is used by two providers", p.issuer),
                ));
            }
            providers.push(provider(p, &field, base, &mut warnings)?);
        }

        let defaults = raw.defaults;
        let default_headers = match defaults.upstream_headers {
            Some(map) => header_mappings(map, "defaults.upstream_headers")?,
            None => Arc::from([]),
        };
        let separator: Arc<str> = defaults
            .claim_separator
            .unwrap_or_else(|| ",".to_owned())
            .into();
        let mut routes = Vec::with_capacity(raw.routes.len());
        let mut route_names = HashSet::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let field = format!("routes[{i}]");
            if !route_names.insert(r.name.clone()) {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("`{}` is used by two routes", r.name),
                ));
            }
            let route = route(
                r,
                &field,
                &names,
                &default_headers,
                defaults.remove_token_header,
                &separator,
            )?;
            if !route.policy.anonymous && route.policy.providers.is_empty() {
                return Err(invalid(
                    format!("{field}.providers"),
                    "no provider can verify tokens for this route; configure `providers` or make the route `anonymous`",
                ));
            }
            routes.push(route);
        }
        if routes.is_empty() {
            warnings.push("no routes are configured: every request is denied".to_owned());
        }
        Ok(Config {
            server,
            log,
            token_sources,
            providers,
            routes,
            allow_unmatched: raw.unmatched == raw::RawUnmatched::Allow,
            warnings,
        })
    }
}

/// A shape error names its field the way validation errors do
/// (`providers[0].leeway`), not as figment's `default.providers.0.leeway`.
fn load_error(error: figment::Error) -> ConfigError {
    if error.path.is_empty() {
        return ConfigError::Load(Box::new(error));
    }
    let mut field = String::new();
    for segment in &error.path {
        if segment.parse::<usize>().is_ok() {
            field.push_str(&format!("[{segment}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(segment);
        }
    }
    invalid(field, &error.kind)
}

fn token_source(raw: RawTokenSource) -> Result<TokenSource, String> {
    match (raw.header, raw.query, raw.cookie) {
        (Some(name), None, None) => {
            let format = match (raw.scheme, raw.prefix) {
                (Some(_), Some(_)) => return Err("set `scheme` or `prefix`, not both".to_owned()),
                (Some(scheme), None) if is_http_token(&scheme) => HeaderFormat::Scheme(scheme),
                (Some(scheme), None) => {
                    return Err(format!("scheme `{scheme}` is not a valid auth scheme"));
                }
                (None, Some(prefix)) if !prefix.is_empty() => HeaderFormat::Prefix(prefix),
                (None, Some(_)) => {
                    return Err("`prefix` is empty; leave it out for a raw token".to_owned());
                }
                (None, None) => HeaderFormat::Raw,
            };
            if !is_http_token(&name) {
                return Err(format!("`{name}` is not a valid header name"));
            }
            Ok(TokenSource::Header {
                name: name.to_ascii_lowercase(),
                format,
            })
        }
        (None, query, cookie) if raw.scheme.is_some() || raw.prefix.is_some() => {
            let _ = (query, cookie);
            Err("`scheme` and `prefix` apply to `header` sources only".to_owned())
        }
        (None, Some(query), None) if !query.is_empty() => Ok(TokenSource::Query(query)),
        (None, None, Some(cookie)) if is_http_token(&cookie) => Ok(TokenSource::Cookie(cookie)),
        _ => Err("set exactly one of `header`, `query` or `cookie`, with a valid name".to_owned()),
    }
}

fn provider(
    raw: RawProvider,
    field: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<ProviderSettings, ConfigError> {
    if raw.name.is_empty() {
        return Err(invalid(format!("{field}.name"), "must not be empty"));
    }
    if raw.issuer.is_empty() {
        return Err(invalid(format!("{field}.issuer"), "must not be empty"));
    }
    let hmac_secret = raw
        .hmac_secret
        .as_ref()
        .map(|s| {
            Secret::load(
                s.env.as_deref(),
                s.file.as_ref().map(|f| base.join(f)).as_deref(),
            )
        })
        .transpose()
        .map_err(|m| invalid(format!("{field}.hmac_secret"), m))?;

    let sources = [
        raw.discovery,
        raw.jwks_uri.is_some(),
        raw.jwks.is_some(),
        raw.jwks_file.is_some(),
    ];
    let keys = match sources.iter().filter(|s| **s).count() {
        0 if hmac_secret.is_some() => KeySource::Static(empty_key_set()),
        1 => key_source(&raw, field, base, warnings)?,
        0 => {
            return Err(invalid(
                field,
                "needs a key source: `discovery: true`, `jwks_uri`, `jwks` or `jwks_file`",
            ));
        }
        _ => {
            return Err(invalid(
                field,
                "set only one of `discovery`, `jwks_uri`, `jwks` and `jwks_file`",
            ));
        }
    };

    let algorithms = match raw.algorithms {
        None if hmac_secret.is_some() && matches!(&keys, KeySource::Static(k) if k.is_empty()) => {
            HMAC_ALGORITHMS.to_vec()
        }
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(list) if list.is_empty() => {
            return Err(invalid(
                format!("{field}.algorithms"),
                "list at least one algorithm",
            ));
        }
        Some(list) => list
            .iter()
            .map(|name| algorithm(name, hmac_secret.is_some()))
            .collect::<Result<_, _>>()
            .map_err(|m| invalid(format!("{field}.algorithms"), m))?,
    };
    let leeway = raw
        .leeway
        .as_ref()
        .map(|d| parse_duration(&d.text()))
        .transpose()
        .map_err(|m| invalid(format!("{field}.leeway"), m))?
        .unwrap_or(Duration::from_secs(30));
    if leeway > Duration::from_secs(300) {
        return Err(invalid(
            format!("{field}.leeway"),
            "at most 5m; a longer leeway lets expired tokens through",
        ));
    }
    let scope_claims = raw
        .scope_claims
        .unwrap_or_else(|| vec!["scope".to_owned(), "scp".to_owned()]);
    if scope_claims.is_empty() {
        return Err(invalid(
            format!("{field}.scope_claims"),
            "list at least one claim",
        ));
    }
    Ok(ProviderSettings {
        name: raw.name.into(),
        issuer: raw.issuer,
        keys,
        hmac_secret,
        audiences: raw.audiences,
        algorithms,
        leeway,
        scope_claims: scope_claims.into(),
        jwks: jwks_settings(&raw.jwks_cache, field)?,
    })
}

fn empty_key_set() -> KeySet {
    KeySet::from_json(br#"{"keys":[]}"#)
        .map(|(keys, _)| keys)
        .unwrap_or_else(|_| unreachable!("an empty JWKS always parses"))
}

fn key_source(
    raw: &RawProvider,
    field: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<KeySource, ConfigError> {
    if raw.discovery {
        check_fetch_url(&raw.issuer).map_err(|m| invalid(format!("{field}.issuer"), m))?;
        return Ok(KeySource::Discovery {
            issuer: raw.issuer.clone(),
        });
    }
    if let Some(uri) = &raw.jwks_uri {
        check_fetch_url(uri).map_err(|m| invalid(format!("{field}.jwks_uri"), m))?;
        return Ok(KeySource::JwksUri(uri.clone()));
    }
    let (document, key_field) = match (&raw.jwks, &raw.jwks_file) {
        (Some(inline), _) => (
            serde_json::to_vec(inline).map_err(|e| invalid(format!("{field}.jwks"), e))?,
            format!("{field}.jwks"),
        ),
        (None, Some(file)) => {
            let path: PathBuf = base.join(file);
            let bytes = std::fs::read(&path).map_err(|e| {
                invalid(
                    format!("{field}.jwks_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            (bytes, format!("{field}.jwks_file"))
        }
        (None, None) => unreachable!("key_source is called with exactly one source set"),
    };
    let (keys, skipped) = KeySet::from_json(&document).map_err(|e| invalid(&key_field, e))?;
    for skip in skipped {
        warnings.push(format!(
            "{key_field}: key {} skipped: {}",
            skip.kid.as_deref().unwrap_or("(no kid)"),
            skip.reason
        ));
    }
    if keys.is_empty() {
        return Err(invalid(
            key_field,
            "holds no key usable for verifying signatures",
        ));
    }
    Ok(KeySource::Static(keys))
}

/// Keys fetched over plain HTTP can be swapped by anyone on the path, so only
/// loopback may use `http://`.
fn check_fetch_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => Ok(()),
        "http" => Err(format!(
            "`{url}` uses plain http; keys must be fetched over https (http is allowed only for localhost)"
        )),
        other => Err(format!("`{url}` has scheme `{other}`; use https")),
    }
}

fn algorithm(name: &str, has_secret: bool) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("`none` is never accepted".to_owned());
    }
    let algorithm: Algorithm = name
        .parse()
        .map_err(|_| format!("unknown algorithm `{name}`"))?;
    if HMAC_ALGORITHMS.contains(&algorithm) && !has_secret {
        return Err(format!(
            "`{name}` needs `hmac_secret`; HMAC is never verified with public keys"
        ));
    }
    Ok(algorithm)
}

fn jwks_settings(raw: &raw::RawJwksCache, field: &str) -> Result<JwksSettings, ConfigError> {
    let defaults = JwksSettings::default();
    let get = |value: &Option<raw::RawDuration>, name: &str, default: Duration| {
        value
            .as_ref()
            .map(|d| parse_duration(&d.text()))
            .transpose()
            .map_err(|m| invalid(format!("{field}.jwks_cache.{name}"), m))
            .map(|v| v.unwrap_or(default))
    };
    let settings = JwksSettings {
        refresh_interval: get(
            &raw.refresh_interval,
            "refresh_interval",
            defaults.refresh_interval,
        )?,
        min_refresh_interval: get(
            &raw.min_refresh_interval,
            "min_refresh_interval",
            defaults.min_refresh_interval,
        )?,
        max_refresh_interval: get(
            &raw.max_refresh_interval,
            "max_refresh_interval",
            defaults.max_refresh_interval,
        )?,
        unknown_kid_refetch_interval: get(
            &raw.unknown_kid_refetch_interval,
            "unknown_kid_refetch_interval",
            defaults.unknown_kid_refetch_interval,
        )?,
        max_stale: get(&raw.max_stale, "max_stale", defaults.max_stale)?,
        retry_interval: get(
            &raw.retry_interval,
            "retry_interval",
            defaults.retry_interval,
        )?,
        fetch_timeout: get(&raw.fetch_timeout, "fetch_timeout", defaults.fetch_timeout)?,
    };
    if settings.min_refresh_interval > settings.max_refresh_interval {
        return Err(invalid(
            format!("{field}.jwks_cache.min_refresh_interval"),
            "is longer than max_refresh_interval",
        ));
    }
    if settings.fetch_timeout.is_zero() {
        return Err(invalid(
            format!("{field}.jwks_cache.fetch_timeout"),
            "must be more than 0",
        ));
    }
    Ok(settings)
}

fn route(
    raw: RawRoute,
    field: &str,
    providers: &HashMap<String, usize>,
    default_headers: &Arc<[HeaderMapping]>,
    default_remove: Option<bool>,
    separator: &Arc<str>,
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
        None => default_headers.clone(),
    };
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
            remove_token_header: raw.remove_token_header.or(default_remove).unwrap_or(false),
            claim_separator: separator.clone(),
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

fn claim_path(raw: RawClaimPath) -> Result<ClaimPath, String> {
    match raw {
        RawClaimPath::Dotted(path) => ClaimPath::dotted(&path),
        RawClaimPath::Segments(segments) => ClaimPath::segments(segments),
    }
}

/// Headers that Envoy owns or that would change how the request is routed or framed.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "keep-alive",
    "proxy-connection",
];

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

/// RFC 9110 `token`: header names and auth schemes.
fn is_http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests;
